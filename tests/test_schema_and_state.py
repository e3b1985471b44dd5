"""Schema negotiation and the start_listening state at each schema that changes it."""

from __future__ import annotations

import pytest

from tests.doubles import DOORBELL, LOCK


@pytest.mark.parametrize("version", [-1, 22, 1000, "21", 2.5, True, None, [21]])
async def test_a_rejected_schema_leaves_the_connection_as_it_was(connect, version):
    client = await connect(schema=9)
    assert await client.error("set_api_schema", schemaVersion=version) == "schema_incompatible"
    # schema 9 still: is_listening_logs (21+) does not exist, get_log_level (9+) does
    assert await client.error("driver.is_listening_logs") == "unknown_command"
    assert await client.ok("driver.get_log_level") == {"level": "info"}


async def test_a_missing_schema_version_is_incompatible(connect):
    client = await connect(schema=None)
    assert await client.error("set_api_schema") == "schema_incompatible"


async def test_connections_start_at_schema_zero(connect):
    client = await connect(schema=None)
    assert await client.error("driver.get_video_events") == "unknown_command"  # 3+
    reply = await client.ok("station.get_properties", serialNumber=DOORBELL)
    assert "serialNumber" not in reply  # added with schema 4


async def test_schema_zero_state_has_full_objects_without_type(connect):
    client = await connect(schema=0, listen=True)
    state = client.state
    assert state["driver"] == {"version": state["driver"]["version"], "connected": True,
                               "pushConnected": True}
    (station,) = state["stations"]
    assert station["serialNumber"] == DOORBELL
    assert station["connected"] is True
    assert "type" not in station
    devices = {d["serialNumber"]: d for d in state["devices"]}
    assert set(devices) == {DOORBELL, LOCK}
    assert "type" not in devices[DOORBELL]
    assert devices[DOORBELL]["ledStatus"] is True  # the name before schema 4
    assert "statusLed" not in devices[DOORBELL]


async def test_schema_one_adds_type(connect):
    client = await connect(schema=1, listen=True)
    devices = {d["serialNumber"]: d for d in client.state["devices"]}
    assert devices[DOORBELL]["type"] == 5
    assert devices[LOCK]["type"] == 51
    assert client.state["stations"][0]["type"] == 5


async def test_schema_four_uses_the_renamed_properties(connect):
    client = await connect(schema=4, listen=True)
    bell = next(d for d in client.state["devices"] if d["serialNumber"] == DOORBELL)
    assert bell["statusLed"] is True and "ledStatus" not in bell
    assert "mqttConnected" not in client.state["driver"]


async def test_schema_nine_reports_mqtt(connect):
    client = await connect(schema=9, listen=True)
    assert client.state["driver"]["mqttConnected"] is False
    assert isinstance(client.state["devices"][0], dict)


@pytest.mark.parametrize("schema", [13, 21])
async def test_from_schema_thirteen_state_lists_serial_numbers(connect, schema):
    client = await connect(schema=schema, listen=True)
    assert client.state["stations"] == [DOORBELL]
    assert client.state["devices"] == [DOORBELL, LOCK]
    assert client.state["driver"]["mqttConnected"] is False


async def test_picture_exists_only_from_schema_seventeen(connect):
    old = await connect(schema=16)
    new = await connect(schema=17)
    assert "picture" not in (await old.ok("device.get_properties", serialNumber=DOORBELL))[
        "properties"]
    picture = (await new.ok("device.get_properties", serialNumber=DOORBELL))["properties"][
        "picture"]
    assert picture["type"] == {"ext": "jpg", "mime": "image/jpeg"}
    assert picture["data"]["type"] == "Buffer"
    assert bytes(picture["data"]["data"])[:2] == b"\xff\xd8"


async def test_several_connections_hold_different_schemas(connect):
    old = await connect(schema=3)
    new = await connect(schema=21)
    assert "serialNumber" not in await old.ok("station.is_connected", serialNumber=DOORBELL)
    assert await new.ok("station.is_connected", serialNumber=DOORBELL) == {
        "serialNumber": DOORBELL, "connected": True}


STATION_KEYS = {"name", "model", "serialNumber", "hardwareVersion", "softwareVersion",
                "lanIpAddress", "macAddress", "currentMode", "guardMode", "connected"}
DEVICE_KEYS = {"name", "model", "serialNumber", "hardwareVersion", "softwareVersion",
               "stationSerialNumber", "enabled"}
"""The keys eufy-security-ws declares for every station and device of its state (StationState
and DeviceState), with ``type`` added from schema 1."""


@pytest.mark.parametrize("schema", [0, 1, 4, 12])
async def test_every_station_and_device_has_the_keys_of_the_reference_state(connect, schema):
    client = await connect(schema=schema, listen=True)
    typed = {"type"} if schema >= 1 else set()
    for station in client.state["stations"]:
        assert STATION_KEYS | typed <= set(station)
    for device in client.state["devices"]:
        assert DEVICE_KEYS | typed <= set(device)
    relay = next(d for d in client.state["devices"] if d["serialNumber"] == LOCK)
    assert relay["enabled"] is True


async def test_a_doorbell_station_is_disarmed_and_its_modes_are_read_only(connect):
    client = await connect(schema=21)
    properties = (await client.ok("station.get_properties", serialNumber=DOORBELL))["properties"]
    assert (properties["guardMode"], properties["currentMode"]) == (63, 63)
    metadata = (await client.ok("station.get_properties_metadata", serialNumber=DOORBELL))[
        "properties"]
    for name in ("guardMode", "currentMode"):
        assert metadata[name]["writeable"] is False
        assert metadata[name]["states"] == {"63": "Disarmed"}
    assert await client.error("station.set_property", serialNumber=DOORBELL, name="guardMode",
                              value=0) == "device_property_readonly"
    old = await connect(schema=12)
    assert await old.error("station.set_guard_mode", serialNumber=DOORBELL,
                           mode=0) == "device_property_readonly"
    assert (await old.ok("station.get_properties", serialNumber=DOORBELL))["properties"][
        "guardMode"] == 63
