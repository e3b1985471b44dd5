"""A SkyBell cloud simulator with a bridge pointed at it, for tests of what SkyBell doorbells
do through the bridge (live view, talkback, recordings)."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp

from bridge.backends.skybell import SkyBellBackend
from bridge.backends.skybell.client import SkyBellClient
from bridge.settings import SkyBellSettings
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from tests.wsclient import Client

FRONT = "A3BAB00001"


class Rig:
    """The SkyBell cloud simulator, a bridge with a SkyBell backend pointed at it, and eufy
    clients."""

    def __init__(self, sim: SkyBellSimulator, backend: SkyBellBackend, bridge: Any) -> None:
        self.sim, self.backend, self.bridge = sim, backend, bridge

    @property
    def device_id(self) -> str:
        return next(d.device_id for d in self.sim.cloud.devices.values() if d.serial == FRONT)

    async def client(self) -> Client:
        return await Client.connect(self.bridge.url, schema=21)

    async def sim_call(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as http, \
                http.request(method, self.sim.url + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def live(self) -> dict[str, Any]:
        return await self.sim_call("GET", f"/_sim/devices/{self.device_id}/live")

    async def faults(self, **faults: Any) -> None:
        await self.sim_call("POST", "/_sim/faults", faults)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def make_rig(bridge_factory: Any, sims: list[SkyBellSimulator], *, stall: float = 10.0,
                   lan: bool = False, poll: float = 30.0, login: bool = False,
                   **sim_options: Any) -> Rig:
    """Start a simulator (kept in ``sims`` for the caller to stop) and a bridge; ``lan``: the
    bridge hears the doorbells' LAN packets; ``login``: it logs in with the account's e-mail
    and password instead of an API key."""
    udp_port = free_udp_port()
    sim = SkyBellSimulator(CloudConfig(udp_port=udp_port, **sim_options))
    await sim.start()
    sims.append(sim)
    credentials: dict[str, Any] = {"email": sim.config.email, "password": sim.config.password} \
        if login else {"api_key": sim.cloud.api_key}
    settings = SkyBellSettings(base_url=sim.url, udp_port=udp_port if lan else 0,
                               udp_listen="127.0.0.1", poll_interval=poll,
                               live_stall_seconds=stall, **credentials)
    client = SkyBellClient(sim.url, backoff=0.05, timeout=5, **credentials)
    backend = SkyBellBackend(settings, client=client)
    return Rig(sim, backend, await bridge_factory([backend]))
