"""An independent eufy-security-ws client (eufy-security-ws-python, schema 1) drives the bridge."""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from eufy_security_ws_python.client import WebsocketClient
from eufy_security_ws_python.model.driver import Driver

from tests.doubles import DOORBELL, LOCK

DISARMED = 63


@asynccontextmanager
async def listening(url: str) -> AsyncIterator[Driver]:
    """The library's driver, built from the bridge's state, for as long as the block runs."""
    async with aiohttp.ClientSession() as session:
        client = WebsocketClient(url, session)
        await client.async_connect()
        ready = asyncio.Event()
        listener = asyncio.create_task(client.async_listen(ready))
        await asyncio.wait_for(ready.wait(), 30)
        assert client.driver is not None
        try:
            yield client.driver
        finally:
            await client.async_disconnect()
            await asyncio.wait_for(listener, 30)


def every_attribute(model: object) -> dict[str, Any]:
    """Read every attribute the library exposes on one of its objects (a missing key in the
    state raises ``KeyError`` here, as it would in the client)."""
    return {name: getattr(model, name)
            for name, _ in inspect.getmembers(type(model), lambda m: isinstance(m, property))}


async def test_the_python_client_loads_the_house_and_follows_events(bridge):
    async with aiohttp.ClientSession() as session:
        client = WebsocketClient(bridge.url, session)
        await client.async_connect()
        assert client.version.max_schema_version == 21
        ready = asyncio.Event()
        listener = asyncio.create_task(client.async_listen(ready))
        await asyncio.wait_for(ready.wait(), 5)

        driver = client.driver
        assert driver.connected is True
        assert set(driver.stations) == {DOORBELL}
        assert set(driver.devices) == {DOORBELL, LOCK}
        bell = driver.devices[DOORBELL]
        assert (bell.name, bell.model, bell.type) == ("Front door", "Test Bell", 5)
        assert bell.station_serial_number == DOORBELL
        assert driver.stations[DOORBELL].connected is True

        metadata = await bell.async_get_properties_metadata()
        assert metadata["properties"]["light"]["writeable"] is True

        seen = asyncio.Event()
        driver.on("property changed", lambda data: seen.set())
        bridge.driver.update_property(bridge.driver.devices[DOORBELL], "light", True)
        await asyncio.wait_for(seen.wait(), 5)
        assert bell._state["light"] is True

        await client.async_disconnect()
        await asyncio.wait_for(listener, 5)


async def test_the_python_client_reads_every_attribute_of_the_demo_house(demo):
    async with listening(demo.url) as driver:
        assert every_attribute(driver)["connected"] is True
        assert len(driver.stations) == 3  # the DoorBird and two SkyBells
        assert len(driver.devices) == 5  # their doorbells and the DoorBird's two relays
        for serial, station in driver.stations.items():
            read = every_attribute(station)
            assert read["serial_number"] == serial
            assert read["connected"] is True
            assert (read["guard_mode"], read["alarm_mode"]) == (DISARMED, DISARMED)
            assert ipaddress.ip_address(read["lan_ip_address"]).is_loopback
            assert read["type"] == 5
            assert all(read[k] for k in ("name", "model", "mac_address", "hardware_version",
                                         "software_version"))
        for serial, device in driver.devices.items():
            read = every_attribute(device)
            assert read["serial_number"] == serial
            assert read["enabled"] is True
            assert read["station_serial_number"] in driver.stations
            assert read["type"] in (5, 51)
            assert all(read[k] for k in ("name", "model", "hardware_version",
                                         "software_version"))
        relays = [d for d in driver.devices.values() if d.type == 51]
        assert len(relays) == 2


async def test_the_python_client_reads_every_attribute_of_the_test_doorbell(bridge):
    async with listening(bridge.url) as driver:
        station = every_attribute(driver.stations[DOORBELL])
        assert station["lan_ip_address"] == "192.0.2.10"
        assert station["mac_address"] == "00:11:22:33:44:55"
        assert (station["guard_mode"], station["alarm_mode"]) == (DISARMED, DISARMED)
        relay = every_attribute(driver.devices[LOCK])
        assert (relay["enabled"], relay["type"], relay["station_serial_number"]) == (
            True, 51, DOORBELL)
