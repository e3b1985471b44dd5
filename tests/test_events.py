"""Events: only to listeners, shaped per schema, pulses that switch themselves off."""

from __future__ import annotations

import asyncio

from bridge.driver import Device, Station
from bridge.driver import properties as p
from tests.doubles import DOORBELL, LOCK


async def test_events_go_only_to_connections_that_listen(bridge, connect):
    quiet = await connect()
    loud = await connect(listen=True)
    bridge.driver.update_property(bridge.driver.devices[DOORBELL], "light", True)
    await loud.event("property changed", name="light")
    await asyncio.sleep(0.05)
    assert quiet.drain() == []


async def test_two_schemas_receive_the_same_change_differently(bridge, connect):
    old = await connect(schema=9, listen=True)
    new = await connect(schema=21, listen=True)
    bridge.driver.update_property(bridge.driver.devices[DOORBELL], "statusLed", False)
    old_change = await old.event("property changed")
    new_change = await new.event("property changed")
    assert new_change == {"source": "device", "event": "property changed",
                          "serialNumber": DOORBELL, "name": "statusLed", "value": False}
    assert old_change.pop("timestamp") > 1_600_000_000_000
    assert old_change == new_change


async def test_unchanged_values_are_not_reported(bridge, connect):
    client = await connect(listen=True)
    bell = bridge.driver.devices[DOORBELL]
    bridge.driver.update_property(bell, "light", False)  # already False
    bridge.driver.update_property(bell, "light", True)
    change = await client.event("property changed")
    assert change["name"] == "light" and change["value"] is True


async def test_a_ring_is_a_pulse_with_its_property(bridge, connect):
    client = await connect(listen=True)
    bridge.driver.pulse(DOORBELL, "ring")
    events = [await client.events.get() for _ in range(4)]
    assert events == [
        {"source": "device", "event": "rings", "serialNumber": DOORBELL, "state": True},
        {"source": "device", "event": "property changed", "serialNumber": DOORBELL,
         "name": "ringing", "value": True},
        {"source": "device", "event": "rings", "serialNumber": DOORBELL, "state": False},
        {"source": "device", "event": "property changed", "serialNumber": DOORBELL,
         "name": "ringing", "value": False},
    ]


async def test_motion_and_person_pulses(bridge, connect):
    client = await connect(listen=True)
    bridge.driver.pulse(DOORBELL, "motion")
    assert (await client.event("motion detected"))["state"] is True
    bridge.driver.pulse(DOORBELL, "person", person="Alice")
    person = await client.event("person detected", state=True)
    assert person == {"source": "device", "event": "person detected", "serialNumber": DOORBELL,
                      "state": True, "person": "Alice"}
    assert (await client.event("property changed", name="personName"))["value"] == "Alice"
    assert (await client.event("motion detected", state=False))["serialNumber"] == DOORBELL
    assert (await client.event("person detected", state=False))["person"] == ""


async def test_a_second_ring_extends_the_pulse(bridge_factory, backend):
    from tests.wsclient import Client

    bridge = await bridge_factory([backend], event_seconds=1.0)
    client = await Client.connect(bridge.url, schema=21, listen=True)
    bridge.driver.pulse(DOORBELL, "ring")
    await asyncio.sleep(0.3)  # well inside the first pulse
    bridge.driver.pulse(DOORBELL, "ring")
    got = []
    async with asyncio.timeout(5):
        while not got or got[-1] != ("rings", False):
            event = await client.events.get()
            if event["event"] == "rings":
                got.append((event["event"], event["state"]))
    assert got == [("rings", True), ("rings", True), ("rings", False)]
    await client.close()


async def test_added_entities_are_objects_below_thirteen_and_serials_from_it(bridge, connect):
    old = await connect(schema=12, listen=True)
    new = await connect(schema=13, listen=True)
    chime = Device("CHIME1", station_serial=DOORBELL)
    for meta, value in [(p.NAME, "Chime"), (p.MODEL, "C"), (p.SERIAL_NUMBER, "CHIME1"),
                        (p.HARDWARE_VERSION, "1"), (p.SOFTWARE_VERSION, "1"), (p.TYPE, 7)]:
        chime.define(meta, value)
    bridge.driver.add_device(chime)
    assert (await new.event("device added"))["device"] == "CHIME1"
    added = (await old.event("device added"))["device"]
    assert added["serialNumber"] == "CHIME1" and added["type"] == 7
    bridge.driver.remove_device("CHIME1")
    assert (await new.event("device removed"))["device"] == "CHIME1"
    assert (await old.event("device removed"))["device"]["name"] == "Chime"
    hub = Station("HUB1")
    hub.define(p.NAME, "Hub")
    bridge.driver.add_station(hub)
    assert (await new.event("station added"))["station"] == "HUB1"
    assert (await old.event("station added"))["station"] == {"name": "Hub", "connected": True}


async def test_station_connectivity_events(bridge, connect):
    client = await connect(listen=True)
    bridge.driver.set_station_connected(DOORBELL, False)
    assert await client.event("disconnected") == {"source": "station", "event": "disconnected",
                                                  "serialNumber": DOORBELL}
    assert (await client.ok("station.is_connected", serialNumber=DOORBELL))["connected"] is False
    bridge.driver.set_station_connected(DOORBELL, True)
    assert (await client.event("connected"))["serialNumber"] == DOORBELL


async def test_locked_events_exist_from_schema_thirteen(bridge, connect):
    old = await connect(schema=12, listen=True)
    new = await connect(schema=13, listen=True)
    bridge.driver.update_property(bridge.driver.devices[LOCK], "locked", False)
    assert (await new.event("locked"))["state"] is False
    await old.event("property changed", name="locked")
    await asyncio.sleep(0.05)
    assert [e for e in old.drain() if e["event"] == "locked"] == []


async def test_events_outside_a_schema_are_not_sent(bridge, connect):
    old = await connect(schema=13, listen=True)
    new = await connect(schema=14, listen=True)
    bridge.driver.publish("driver", "connection error", error={"message": "boom"})
    assert (await new.event("connection error"))["error"] == {"message": "boom"}
    await asyncio.sleep(0.05)
    assert old.drain() == []
