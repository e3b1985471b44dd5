"""A simulated DoorBird with a bridge pointed at it, for tests of what a DoorBird does through
the bridge (live view, talkback, faults)."""

from __future__ import annotations

from typing import Any

from bridge.backends.doorbird import DoorBirdBackend
from bridge.backends.doorbird.client import DoorBirdClient
from bridge.settings import DoorBirdSettings
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from tests.test_doorbird_backend import free_tcp_port, free_udp_port
from tests.wsclient import Client


class Rig:
    """A simulated DoorBird (with or without RTSP), a bridge with a DoorBird backend pointed
    at it, and eufy clients."""

    def __init__(self, sim: DoorBirdSimulator, backend: DoorBirdBackend, bridge: Any) -> None:
        self.sim, self.backend, self.bridge = sim, backend, bridge
        self.clients: list[Client] = []

    async def client(self) -> Client:
        client = await Client.connect(self.bridge.url, schema=21)
        self.clients.append(client)
        return client


async def make_rig(bridge_factory: Any, made: list[Rig], *, rtsp: bool = False,
                   **sim_options: Any) -> Rig:
    """Start a simulated station (with or without RTSP) and a bridge; ``made`` keeps the rig
    for the caller to stop."""
    config = DoorBirdConfig(**{"event_ports": [free_udp_port(), free_udp_port()],
                               "rtsp_port": 0 if rtsp else None, "rtsp_http_port": None,
                               **sim_options})
    sim = DoorBirdSimulator(config)
    await sim.start()
    settings = DoorBirdSettings(
        host=sim.address, username=config.user, password=config.password,
        event_ports=config.event_ports, listen_host="127.0.0.1", rtsp_port=sim.rtsp_port)
    client = DoorBirdClient(settings.host, settings.username,
                            settings.password.get_secret_value(), connection_interval=0.05)
    backend = DoorBirdBackend(settings, client=client)
    bridge = await bridge_factory([backend], port=free_tcp_port())
    rig = Rig(sim, backend, bridge)
    made.append(rig)
    return rig
