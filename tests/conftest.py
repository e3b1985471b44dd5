from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bridge import logs
from bridge.app import Bridge
from bridge.demo import Demo
from bridge.settings import load_settings
from tests import doorbird_rig as doorbird
from tests import skybell_rig as skybell
from tests.doubles import DoorbellBackend
from tests.wsclient import Client

logs.configure("info", "console")


@pytest.fixture
async def bridge_factory() -> AsyncIterator[Callable[..., Awaitable[Bridge]]]:
    started: list[Bridge] = []

    async def start(backends: list[Any] | None = None, subscriber: Any = None,
                    **server: Any) -> Bridge:
        settings = load_settings(**{f"server.{k}": v for k, v in
                                    {"port": 0, "event_seconds": 0.2, **server}.items()},
                                 **{"media.rtsp_port": 0})
        bridge = Bridge(settings, backends=[] if backends is None else backends)
        if subscriber is not None:  # hears what happens during start-up, too
            bridge.driver.bus.subscribe(subscriber)
        await bridge.start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        await bridge.stop()
    logs.hub.set_level("info")


@contextlib.asynccontextmanager
async def demo_house(data_dir: Any, **settings: Any) -> AsyncIterator[Bridge]:
    """The demo house: both real backends against their simulators on loopback, with a
    bridge on free ports (``settings`` as dotted keys, e.g. ``server.auth_token``)."""
    demo = Demo(visitors=None)
    await demo.start()
    bridge = Bridge(demo.settings(load_settings(**{
        "server.port": 0, "media.rtsp_port": 0, "server.data_dir": data_dir,
        "server.event_seconds": 0.5, **settings})))
    demo.install(bridge.server)
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop()
        await demo.stop()


@pytest.fixture
async def demo(tmp_path: Any) -> AsyncIterator[Bridge]:
    async with demo_house(tmp_path) as bridge:
        yield bridge


@pytest.fixture
async def backend() -> DoorbellBackend:
    return DoorbellBackend()


@pytest.fixture
async def bridge(
    bridge_factory: Callable[..., Awaitable[Bridge]], backend: DoorbellBackend
) -> Bridge:
    return await bridge_factory([backend])


@pytest.fixture
async def connect(bridge: Bridge) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(schema: int | None = 21, listen: bool = False) -> Client:
        client = await Client.connect(bridge.url, schema=schema, listen=listen)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def skybell_rig(
        bridge_factory: Any) -> AsyncIterator[Callable[..., Awaitable[skybell.Rig]]]:
    """Makes a SkyBell cloud simulator with a bridge pointed at it (see tests/skybell_rig.py)."""
    sims: list[Any] = []
    yield functools.partial(skybell.make_rig, bridge_factory, sims)
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def doorbird_rig(
        bridge_factory: Any) -> AsyncIterator[Callable[..., Awaitable[doorbird.Rig]]]:
    """Makes a simulated DoorBird with a bridge pointed at it (see tests/doorbird_rig.py)."""
    made: list[doorbird.Rig] = []
    yield functools.partial(doorbird.make_rig, bridge_factory, made)
    for rig in made:
        for client in rig.clients:
            await client.close()
        await rig.sim.stop()
