"""An independent eufy-security-ws client (eufy-security-ws-python, schema 1) drives the bridge."""

from __future__ import annotations

import asyncio

import aiohttp
from eufy_security_ws_python.client import WebsocketClient

from tests.doubles import DOORBELL, LOCK


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
