"""Faults switched on in the simulators while the bridge runs: each gets a specific answer at
once, the bridge recovers by itself when the fault clears, no ring is lost or doubled, and
nothing leaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.leaks import resources, settled
from tests.media import media_events
from tests.skybell_rig import FRONT
from tests.test_doorbird_media import BELL
from tests.wsclient import PATIENCE, Client

RELAY = f"{BELL}-R1"


async def switch(base_url: str, **faults: Any) -> None:
    async with aiohttp.ClientSession() as http, \
            http.post(f"{base_url}/_sim/faults", json=faults) as response:
        assert response.status == 200, await response.text()


async def rings_within(client: Client, serial: str, seconds: float, grace: float = 1.5) -> int:
    """``rings`` events (state true) for ``serial``: the first within ``seconds``, and any
    copies of it within ``grace`` after that."""
    count, ends = 0, time.monotonic() + seconds
    while (left := ends - time.monotonic()) > 0:
        try:
            event = await asyncio.wait_for(client.events.get(), left)
        except TimeoutError:
            break
        if event["event"] == "rings" and event["serialNumber"] == serial and event["state"]:
            count += 1
            ends = min(ends, time.monotonic() + grace)
    return count


async def answers_slowly_and_leaves_nothing(sim_url: str,
                                           command: Callable[[], Awaitable[Any]]) -> None:
    """``command`` succeeds while every answer of the vendor comes 300 ms late, and a second
    slow spell costs nothing (the first grows the connection pool to what slow answers need)."""

    async def slowly() -> None:
        await switch(sim_url, latency_ms=300)
        started = time.monotonic()
        await command()
        assert time.monotonic() - started >= 0.3
        await switch(sim_url, latency_ms=False)

    await slowly()
    before = resources()
    await slowly()
    await settled(before)


# -- DoorBird ----------------------------------------------------------------------------------

DOORBIRD_HTTP_FAULTS = [
    ({"http_status": 503}, "station_connection_timeout"),
    ({"http_status": 500}, "station_connection_timeout"),
    ({"reset": True}, "station_not_connected"),
    ({"garbage": True}, "station_connection_timeout"),
    ({"malformed_json": True}, "station_connection_timeout"),
    ({"busy": True}, "station_connection_timeout"),
    ({"offline": True}, "station_not_connected"),
    ({"lockout": True}, "station_not_connected"),
]


@pytest.mark.parametrize(("fault", "code"), DOORBIRD_HTTP_FAULTS,
                         ids=[next(iter(f)) + str(next(iter(f.values())))
                              for f, _ in DOORBIRD_HTTP_FAULTS])
async def test_a_doorbird_fault_answers_its_code_at_once_and_clears(doorbird_rig, fault, code):
    rig = await doorbird_rig()
    client = await rig.client()

    async def outage() -> None:
        await switch(rig.sim.url, **fault)
        started = time.monotonic()
        assert await client.error("device.unlock", serialNumber=RELAY) == code
        assert time.monotonic() - started < 8
        await switch(rig.sim.url, **{name: False for name in fault})
        async with asyncio.timeout(PATIENCE):  # back by itself, without a restart
            while (await client.command("device.unlock", serialNumber=RELAY))["success"] \
                    is False:
                await asyncio.sleep(0.2)
        assert (await client.ok("station.is_connected", serialNumber=BELL))["connected"]

    await outage()
    before = resources()  # connection pools warmed: another outage must cost nothing
    await outage()
    await settled(before)


async def test_a_slow_doorbird_still_answers(doorbird_rig):
    rig = await doorbird_rig()
    client = await rig.client()
    await answers_slowly_and_leaves_nothing(
        rig.sim.url, lambda: client.ok("device.unlock", serialNumber=RELAY))


async def test_every_stream_slot_taken_answers_a_timeout_and_clears(doorbird_rig):
    rig = await doorbird_rig(rtsp=True)
    client = await rig.client()
    await client.ok("device.is_livestreaming", serialNumber=BELL)
    before = resources()
    await switch(rig.sim.url, streams_exhausted=True)
    assert await client.error("device.start_livestream", serialNumber=BELL) == \
        "station_connection_timeout"
    await switch(rig.sim.url, streams_exhausted=False)
    await client.ok("device.start_livestream", serialNumber=BELL)
    await media_events(client, "video", 3)
    await client.ok("device.stop_livestream", serialNumber=BELL)
    await settled(before)


@pytest.mark.parametrize("rtsp", [True, False], ids=["rtsp", "mjpeg"])
async def test_a_stream_cut_off_by_the_station_ends_or_goes_on_never_hangs(doorbird_rig, rtsp):
    rig = await doorbird_rig(rtsp=rtsp)
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    before = resources()
    await client.ok("device.start_livestream", serialNumber=BELL)
    await media_events(client, "video", 3)
    await switch(rig.sim.url, truncate_streams=True)
    await client.event("livestream stopped")
    await switch(rig.sim.url, truncate_streams=False)
    await client.ok("device.start_livestream", serialNumber=BELL)  # recovers
    await media_events(client, "video", 3)
    await client.ok("device.stop_livestream", serialNumber=BELL)
    await settled(before)
    await client.close()


@pytest.mark.parametrize("fault", ["udp_replay", "udp_out_of_order", "udp_garbage"])
async def test_replayed_reordered_and_garbage_packets_neither_lose_nor_double_a_ring(
        doorbird_rig, fault):
    rig = await doorbird_rig()
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    await rig.sim.device.ring(1)
    assert await rings_within(client, BELL, 6) == 1
    before = resources()
    await switch(rig.sim.url, **{fault: True})
    for _ in range(3):
        await rig.sim.device.ring(1)
        assert await rings_within(client, BELL, 6) == 1
    await settled(before)
    await client.close()


@pytest.mark.parametrize("jump", [-86400, 3600])
async def test_a_station_clock_that_jumps_still_rings_once(doorbird_rig, jump):
    rig = await doorbird_rig()
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    await rig.sim.device.ring(1)
    assert await rings_within(client, BELL, 6) == 1
    before = resources()
    await switch(rig.sim.url, clock_jump_s=jump)
    for _ in range(2):
        await rig.sim.device.ring(1)
        assert await rings_within(client, BELL, 6) == 1
    await settled(before)
    await client.close()


# -- SkyBell -----------------------------------------------------------------------------------

SKYBELL_HTTP_FAULTS = [
    ({"http_status": 503}, "station_connection_timeout"),
    ({"http_status": 500}, "station_connection_timeout"),
    ({"reset": True}, "station_connection_timeout"),
    ({"garbage": True}, "station_connection_timeout"),
    ({"malformed_json": True}, "station_connection_timeout"),
]


@pytest.mark.parametrize(("fault", "code"), SKYBELL_HTTP_FAULTS,
                         ids=[next(iter(f)) + str(next(iter(f.values())))
                              for f, _ in SKYBELL_HTTP_FAULTS])
async def test_a_skybell_cloud_fault_answers_its_code_at_once_and_clears(skybell_rig, fault,
                                                                         code):
    rig = await skybell_rig()
    client = await rig.client()

    async def outage() -> None:
        await switch(rig.sim.url, **fault)
        started = time.monotonic()
        assert await client.error("device.set_property", serialNumber=FRONT,
                                  name="chimeTone", value=3) == code
        assert time.monotonic() - started < 8
        await switch(rig.sim.url, **{name: False for name in fault})
        await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=3)

    await outage()
    before = resources()
    await outage()
    await settled(before)


async def test_a_skybell_ring_during_a_cloud_outage_is_reported_once(skybell_rig):
    rig = await skybell_rig(lan=True, poll=0.5)
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    await asyncio.sleep(1)  # a poll or two: the pool's connection is open
    before = resources()
    await switch(rig.sim.url, http_status=503)
    await rig.sim_call("POST", f"/_sim/devices/{rig.device_id}/ring")  # LAN packet: at once
    assert await rings_within(client, FRONT, 6, grace=0) == 1
    await switch(rig.sim.url, http_status=False)
    assert await rings_within(client, FRONT, 3) == 0  # the cloud's record of it is the same
    await settled(before)
    await client.close()


async def test_revoked_skybell_tokens_cost_one_new_login_and_no_failed_command(skybell_rig):
    rig = await skybell_rig(login=True)
    client = await rig.client()
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=2)
    logins, before = rig.sim.cloud.logins, resources()
    await switch(rig.sim.url, tokens_revoked=True)
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=3)
    assert rig.sim.cloud.logins == logins + 1
    await settled(before)


async def test_a_revoked_api_key_is_reported_and_the_bridge_works_again_once_restored(
        skybell_rig):
    rig = await skybell_rig()
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=2)
    before = resources()
    await switch(rig.sim.url, api_key_revoked=True)
    assert await client.error("device.set_property", serialNumber=FRONT, name="chimeTone",
                              value=3) == "station_not_connected"
    assert (await client.event("connection error"))["error"]["vendor"] == "skybell"
    await switch(rig.sim.url, api_key_revoked=False)
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=3)
    await settled(before)
    await client.close()


async def test_expired_skybell_tokens_are_refreshed_without_a_new_login(skybell_rig):
    rig = await skybell_rig(login=True)
    client = await rig.client()
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=2)
    logins, refreshes = rig.sim.cloud.logins, rig.sim.cloud.refreshes
    before = resources()
    await switch(rig.sim.url, tokens_expired=True)
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=3)
    assert (rig.sim.cloud.logins, rig.sim.cloud.refreshes) == (logins, refreshes + 1)
    await settled(before)


async def test_a_slow_cloud_still_answers(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    await answers_slowly_and_leaves_nothing(rig.sim.url, lambda: client.ok(
        "device.set_property", serialNumber=FRONT, name="chimeTone", value=3))


@pytest.mark.parametrize(("lan", "jump"), [(False, -3600), (False, 3600), (True, -3600),
                                           (True, 3600)])
async def test_a_skybell_cloud_clock_that_jumps_neither_hides_nor_doubles_a_ring(
        skybell_rig, lan, jump):
    """Without the LAN the activity feed alone brings the ring, even from a cloud whose clock
    went back an hour behind the activities already read; with it, the LAN packet and the
    activity an hour off are still one ring."""
    rig = await skybell_rig(poll=0.3, lan=lan)
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    await rig.sim_call("POST", f"/_sim/devices/{rig.device_id}/ring")
    assert await rings_within(client, FRONT, 5) == 1
    before = resources()
    await switch(rig.sim.url, clock_jump_s=jump)
    for _ in range(2):
        await rig.sim_call("POST", f"/_sim/devices/{rig.device_id}/ring")
        assert await rings_within(client, FRONT, 5, grace=2) == 1
    await settled(before)
    await client.close()


async def test_skybells_gone_offline_answer_at_once_and_stream_again_when_back(skybell_rig):
    rig = await skybell_rig()
    client = await Client.connect(rig.bridge.url, schema=21, listen=True)
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=2)
    before = resources()
    await switch(rig.sim.url, offline=True)
    started = time.monotonic()
    assert await client.error("device.start_livestream", serialNumber=FRONT) == \
        "station_connection_timeout"
    assert time.monotonic() - started < 3
    await switch(rig.sim.url, offline=False)
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 3)
    await client.ok("device.stop_livestream", serialNumber=FRONT)
    await settled(before)
    await client.close()
