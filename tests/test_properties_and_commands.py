"""Properties, their metadata and writes; station and device commands."""

from __future__ import annotations

import pytest

from tests.doubles import DOORBELL, LOCK


async def test_every_entity_has_the_identity_properties(connect):
    client = await connect()
    for command, serial in [("station.get_properties", DOORBELL),
                            ("device.get_properties", DOORBELL),
                            ("device.get_properties", LOCK)]:
        props = (await client.ok(command, serialNumber=serial))["properties"]
        for name in ("name", "model", "serialNumber", "hardwareVersion", "softwareVersion",
                     "type"):
            assert name in props, (command, serial, name)


async def test_metadata_carries_ranges_states_and_writeability(connect):
    client = await connect()
    reply = await client.ok("device.get_properties_metadata", serialNumber=DOORBELL)
    assert reply["serialNumber"] == DOORBELL
    meta = reply["properties"]
    assert meta["speakerVolume"] == {"key": "volume", "name": "speakerVolume",
                                     "label": "Speaker volume", "readable": True,
                                     "writeable": True, "type": "number", "min": 0, "max": 100}
    assert meta["videoStreamingQuality"]["states"] == {"0": "480p", "1": "720p", "2": "1080p"}
    assert meta["name"]["writeable"] is False


async def test_metadata_below_schema_four_uses_old_names(connect):
    client = await connect(schema=3)
    reply = await client.ok("device.get_properties_metadata", serialNumber=DOORBELL)
    assert "serialNumber" not in reply
    assert reply["properties"]["ledStatus"]["name"] == "ledStatus"


async def test_set_property_writes_the_backend_and_reports_the_change(connect, backend):
    client = await connect(listen=True)
    assert await client.ok("device.set_property", serialNumber=DOORBELL, name="speakerVolume",
                           value=70) == {"async": True}
    change = await client.event("property changed", name="speakerVolume")
    assert change == {"source": "device", "event": "property changed", "serialNumber": DOORBELL,
                      "name": "speakerVolume", "value": 70}
    assert backend.writes == [(DOORBELL, "speakerVolume", 70)]
    props = (await client.ok("device.get_properties", serialNumber=DOORBELL))["properties"]
    assert props["speakerVolume"] == 70


async def test_set_property_answers_empty_below_schema_thirteen(connect):
    client = await connect(schema=12)
    assert await client.ok("device.set_property", serialNumber=DOORBELL, name="light",
                           value=True) == {}


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("notAProperty", 1, "device_invalid_property"),
        ("locked", True, "device_property_not_supported"),  # a lock's property, not a bell's
        ("watermark", 1, "device_property_not_supported"),  # a eufy property nobody fills
        ("wifiRssi", -40, "device_property_readonly"),
        ("name", "x", "device_property_readonly"),
        ("speakerVolume", 101, "device_invalid_property_value"),
        ("speakerVolume", -1, "device_invalid_property_value"),
        ("speakerVolume", "50", "device_invalid_property_value"),
        ("speakerVolume", True, "device_invalid_property_value"),
        ("speakerVolume", None, "device_invalid_property_value"),
        ("light", 1, "device_invalid_property_value"),
        ("videoStreamingQuality", 7, "device_invalid_property_value"),
        ("speakerVolume", 13, "device_invalid_property_value"),  # refused by the device
    ],
)
async def test_set_property_errors(connect, backend, name, value, code):
    client = await connect()
    assert await client.error("device.set_property", serialNumber=DOORBELL, name=name,
                              value=value) == code
    assert backend.writes == []


async def test_set_property_needs_name_and_value(connect):
    client = await connect()
    assert await client.error("device.set_property", serialNumber=DOORBELL,
                              name="light") == "device_invalid_command_value"
    assert await client.error("device.set_property", serialNumber=DOORBELL,
                              value=True) == "device_invalid_command_value"


async def test_old_names_can_be_set_below_schema_four(connect, backend):
    client = await connect(schema=3, listen=True)
    await client.ok("device.set_property", serialNumber=DOORBELL, name="ledStatus", value=False)
    change = await client.event("property changed")
    assert change["name"] == "ledStatus" and change["value"] is False
    assert "timestamp" in change
    assert backend.writes == [(DOORBELL, "statusLed", False)]


async def test_deprecated_setters_set_their_property_until_schema_twelve(connect, backend):
    client = await connect(schema=12)
    assert await client.ok("device.set_status_led", serialNumber=DOORBELL, value=False) == {}
    assert backend.writes == [(DOORBELL, "statusLed", False)]
    assert await client.error("device.set_status_led", serialNumber=DOORBELL,
                              value="off") == "device_invalid_command_value"
    assert await client.error("device.set_watermark", serialNumber=DOORBELL,
                              value=1) == "device_not_supported"
    newer = await connect(schema=13)
    assert await newer.error("device.set_status_led", serialNumber=DOORBELL,
                             value=False) == "unknown_command"


async def test_commands_list_only_what_the_device_does(connect):
    client = await connect()
    lock = await client.ok("device.get_commands", serialNumber=LOCK)
    assert lock == {"serialNumber": LOCK, "commands": ["unlock", "open"]}
    old = await connect(schema=20)
    assert (await old.ok("device.get_commands", serialNumber=LOCK))["commands"] == ["unlock"]
    assert await client.ok("device.has_command", serialNumber=LOCK, commandName="unlock") == {
        "serialNumber": LOCK, "exists": True}
    assert (await client.ok("device.has_command", serialNumber=DOORBELL,
                            commandName="unlock"))["exists"] is False
    assert (await client.ok("station.get_commands", serialNumber=DOORBELL))["commands"] == [
        "reboot"]


async def test_has_property(connect):
    client = await connect()
    assert (await client.ok("device.has_property", serialNumber=DOORBELL,
                            propertyName="light"))["exists"] is True
    assert (await client.ok("device.has_property", serialNumber=LOCK,
                            propertyName="light"))["exists"] is False


async def test_unlock_reaches_the_backend_and_reports_locked(connect, backend):
    client = await connect(listen=True)
    assert await client.ok("device.unlock", serialNumber=LOCK) == {"async": True}
    assert await client.event("locked", serialNumber=LOCK) == {
        "source": "device", "event": "locked", "serialNumber": LOCK, "state": False}
    assert backend.commands == [(LOCK, "unlock", {})]


async def test_actions_a_device_lacks_are_not_supported(connect):
    client = await connect()
    assert await client.error("device.unlock", serialNumber=DOORBELL) == "device_not_supported"
    assert await client.error("device.pan_and_tilt", serialNumber=DOORBELL,
                              direction=1) == "device_not_supported"
    assert await client.error("station.trigger_alarm", serialNumber=DOORBELL,
                              seconds=3) == "device_not_supported"


async def test_queries_succeed_even_where_the_feature_is_absent(connect):
    """The largest client aborts its set-up when any of these fails."""
    client = await connect()
    for serial in (DOORBELL, LOCK):
        assert (await client.ok("device.is_livestreaming", serialNumber=serial))[
            "livestreaming"] is False
        assert (await client.ok("device.is_rtsp_livestreaming", serialNumber=serial))[
            "livestreaming"] is False
        assert (await client.ok("device.is_downloading", serialNumber=serial))[
            "downloading"] is False
        assert (await client.ok("device.is_talkback_ongoing", serialNumber=serial))[
            "talkbackOngoing"] is False
        assert await client.ok("device.get_voices", serialNumber=serial) == {
            "serialNumber": serial, "voices": {}}
        assert await client.ok("device.get_users", serialNumber=serial) == {"users": []}
    assert await client.ok("station.is_connected", serialNumber=DOORBELL) == {
        "serialNumber": DOORBELL, "connected": True}


async def test_station_reboot_reaches_the_backend(connect, backend):
    client = await connect(schema=12)
    assert await client.ok("station.reboot", serialNumber=DOORBELL) == {}
    assert backend.commands == [(DOORBELL, "reboot", {})]


async def test_a_backend_that_never_answers_times_out(bridge_factory, backend):
    from tests.wsclient import Client

    bridge = await bridge_factory([backend], command_timeout=0.3)
    client = await Client.connect(bridge.url, schema=21)
    assert await client.error("device.reset_alarm",
                              serialNumber=DOORBELL) == "station_connection_timeout"
    # the connection is still fine
    assert await client.ok("driver.is_connected") == {"connected": True}
    await client.close()


@pytest.mark.parametrize(
    "message",
    [
        {"command": "device.get_properties"},
        {"command": "device.get_properties", "serialNumber": 5},
        {"command": "device.get_properties", "serialNumber": None},
        {"command": "device.pan_and_tilt", "serialNumber": DOORBELL, "direction": 9},
        {"command": "device.pan_and_tilt", "serialNumber": DOORBELL, "direction": "left"},
        {"command": "device.snooze", "serialNumber": DOORBELL, "snoozeTime": -5},
        {"command": "device.talkback_audio_data", "serialNumber": DOORBELL, "buffer": "xx"},
        {"command": "device.talkback_audio_data", "serialNumber": DOORBELL,
         "buffer": {"type": "Buffer", "data": [1, 300]}},
        {"command": "station.database_delete", "serialNumber": DOORBELL, "ids": [1, "2"]},
        {"command": "station.database_query_local", "serialNumber": DOORBELL,
         "startDate": "yesterday", "endDate": "20260101"},
        {"command": "station.trigger_alarm", "serialNumber": DOORBELL},
        {"command": "driver.get_video_events", "maxResults": -1},
        {"command": "driver.get_video_events", "startTimestampMs": "now"},
        {"command": "driver.set_log_level", "level": "verbose"},
        {"command": "driver.set_log_level", "level": 3},
        {"command": "driver.set_verify_code"},
    ],
)
async def test_missing_or_ill_typed_parameters(connect, message):
    client = await connect()
    reply = await client.send(dict(message))
    assert reply["errorCode"] == "device_invalid_command_value"


async def test_parameters_are_checked_before_serial_numbers(connect):
    client = await connect()
    assert await client.error("device.pan_and_tilt", serialNumber="NOPE",
                              direction=9) == "device_invalid_command_value"
    assert await client.error("device.pan_and_tilt", serialNumber="NOPE",
                              direction=1) == "device_not_found"


async def test_a_true_surprise_is_unknown_error_and_is_logged(connect, backend, monkeypatch):
    async def broken(entity, command, params):
        raise RuntimeError("vendor library bug")

    monkeypatch.setattr(backend, "run_command", broken)
    logger = await connect()
    await logger.ok("driver.start_listening_logs")
    client = await connect()
    assert await client.error("device.unlock", serialNumber=LOCK) == "unknown_error"
    audit = (await logger.event("logging"))["message"]
    assert audit["message"] == "door action"  # an unlock is logged before it is tried
    record = (await logger.event("logging"))["message"]
    assert record["message"] == "command failed unexpectedly"
    assert record["meta"]["logLevel"] == "error"
    assert record["arguments"] == [{"command": "device.unlock"}]
    assert await client.ok("driver.is_connected") == {"connected": True}
