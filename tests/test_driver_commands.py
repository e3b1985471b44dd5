"""driver.* commands: connectivity, refresh, event history, verification, log control."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from tests.doubles import DOORBELL, DoorbellBackend


async def test_connectivity_is_answered_from_the_backends(connect):
    client = await connect()
    assert await client.ok("driver.is_connected") == {"connected": True}
    assert await client.ok("driver.is_push_connected") == {"connected": True}
    assert await client.ok("driver.is_mqtt_connected") == {"connected": False}


async def test_an_empty_bridge_is_connected_without_push(bridge_factory):
    from tests.wsclient import Client

    bridge = await bridge_factory([])
    client = await Client.connect(bridge.url, schema=21, listen=True)
    assert client.state == {"driver": {"version": client.state["driver"]["version"],
                                       "connected": True, "pushConnected": False,
                                       "mqttConnected": False},
                            "stations": [], "devices": []}
    await client.close()


async def test_a_backend_that_fails_to_start_does_not_stop_the_bridge(bridge_factory):
    from tests.wsclient import Client

    broken = DoorbellBackend(fail_start="door station unreachable")
    bridge = await bridge_factory([broken, DoorbellBackend()])
    client = await Client.connect(bridge.url, schema=21, listen=True)
    assert client.state["driver"]["connected"] is True
    assert client.state["stations"] == [DOORBELL]
    await client.close()


async def test_disconnect_and_connect(connect, backend):
    client = await connect(listen=True)
    assert await client.ok("driver.disconnect") == {}
    await client.event("disconnected")
    assert backend.stopped is True
    assert await client.ok("driver.is_connected") == {"connected": False}
    assert await client.ok("driver.connect") == {"result": True}
    await client.event("connected")
    assert await client.ok("driver.is_connected") == {"connected": True}


async def test_poll_refresh_asks_every_backend(connect, backend):
    client = await connect()
    assert await client.ok("driver.poll_refresh") == {}
    assert backend.refreshes == 1


async def test_event_history_is_merged_filtered_and_newest_first(connect, backend):
    now = int(time.time() * 1000)
    backend.history = [
        {"device_sn": DOORBELL, "station_sn": DOORBELL, "start_time": now - 3000},
        {"device_sn": DOORBELL, "station_sn": DOORBELL, "start_time": now - 1000},
        {"device_sn": "OTHER", "station_sn": "OTHER", "start_time": now - 2000},
        {"device_sn": DOORBELL, "station_sn": DOORBELL, "start_time": now - 90_000_000},
    ]
    client = await connect()
    events = (await client.ok("driver.get_video_events"))["events"]
    assert [e["start_time"] for e in events] == [now - 1000, now - 2000, now - 3000,
                                                 now - 90_000_000]
    ranged = await client.ok("driver.get_history_events", startTimestampMs=now - 60_000,
                             endTimestampMs=now, filter={"deviceSN": DOORBELL}, maxResults=1)
    assert [e["start_time"] for e in ranged["events"]] == [now - 1000]
    assert await client.ok("driver.get_alarm_events") == {"events": []}


async def test_verification_is_answered_honestly(connect):
    client = await connect()
    assert await client.ok("driver.set_verify_code", verifyCode="123456") == {"result": False}
    assert await client.ok("driver.set_captcha", captcha="abcd") == {"result": False}


async def test_log_level_is_one_of_seven_and_changes_are_announced(connect):
    client = await connect(listen=True)
    other = await connect(listen=True)
    assert await client.ok("driver.get_log_level") == {"level": "info"}
    assert await client.ok("driver.set_log_level", level="debug") == {}
    assert await other.event("log level changed") == {
        "source": "driver", "event": "log level changed", "level": "debug"}
    assert await client.ok("driver.get_log_level") == {"level": "debug"}


@pytest.mark.parametrize(("schema", "shape"), [(9, "tslog"), (20, "tslog"), (21, "structured")])
async def test_logging_events_in_both_shapes(connect, schema, shape):
    client = await connect(schema=schema)
    assert await client.ok("driver.start_listening_logs") == {}
    structlog.get_logger(component="tests").warning("door left open", door="front")
    event = await client.event("logging")
    message = event["message"]
    if shape == "tslog":
        assert message["logLevel"] == "warn"
        assert message["logLevelId"] == 4
        assert message["argumentsArray"][0] == "door left open"
        assert message["argumentsArray"][1] == {"door": "front"}
        assert message["date"].endswith("Z")
        assert message["loggerName"] == "tests"
    else:
        assert message["message"] == "door left open"
        assert message["arguments"] == [{"door": "front"}]
        assert set(message["meta"]) == {"runtime", "runtimeVersion", "hostname", "date",
                                        "logLevel", "driverVersion"}
        assert message["meta"]["logLevel"] == "warn"


async def test_logging_events_stop_when_asked_and_respect_the_level(connect):
    client = await connect()
    await client.ok("driver.start_listening_logs")
    assert await client.ok("driver.is_listening_logs") == {"started": True}
    logger = structlog.get_logger(component="tests")
    logger.debug("too quiet to be sent")
    logger.info("loud enough")
    assert (await client.event("logging"))["message"]["message"] == "loud enough"
    await client.ok("driver.stop_listening_logs")
    assert await client.ok("driver.is_listening_logs") == {"started": False}
    logger.error("after stop")
    await asyncio.sleep(0.05)
    assert client.drain() == []


async def test_credentials_never_reach_log_listeners(connect):
    client = await connect()
    await client.ok("driver.start_listening_logs")
    structlog.get_logger(component="tests").info("login", password="hunter2", api_key="k-1",
                                                 user="me")
    message = (await client.event("logging"))["message"]
    assert message["arguments"] == [{"password": "***", "api_key": "***", "user": "me"}]


async def test_a_slow_or_failing_backend_does_not_fail_driver_commands(bridge_factory):
    from tests.wsclient import Client

    class Stuck(DoorbellBackend):
        async def refresh(self) -> None:
            await asyncio.sleep(3600)

        async def get_events(self, *args):
            raise RuntimeError("vendor outage")

    healthy, stuck = DoorbellBackend(), Stuck()
    healthy.history = [{"device_sn": "X", "station_sn": "X",
                        "start_time": int(time.time() * 1000) - 10}]
    bridge = await bridge_factory([healthy, stuck], command_timeout=1.0)
    client = await Client.connect(bridge.url, schema=21)
    # unbounded, the stuck backend would run into the command timeout and fail the command
    assert await client.ok("driver.poll_refresh") == {}
    assert healthy.refreshes == 1
    assert len((await client.ok("driver.get_history_events"))["events"]) == 1
    await client.close()
