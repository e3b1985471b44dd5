"""Demo mode: a living house of doorbells on loopback, driven through the real backends.

One simulated DoorBird (two relays) and one simulated SkyBell account with two doorbells run
in-process; the bridge is pointed at them exactly as at real devices (HTTP, UDP, webhooks), and
simulated visitors ring and move now and then.  The page on the bridge's port gets buttons to
ring, move, and take a device offline and back.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from bridge.app import Bridge
from bridge.driver.driver import HttpReply
from bridge.settings import DoorBirdSettings, Settings, SkyBellSettings
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from bridge.tasks import BackgroundTasks

if TYPE_CHECKING:
    from bridge.server import BridgeServer

log = structlog.get_logger(component="demo")

LOOPBACK = "127.0.0.1"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Demo:
    """The simulators of demo mode and the page's controls for them."""

    FIRST_VISITOR_SECONDS = 15.0
    """With visitors on, somebody rings the DoorBird this soon after start, so that a newcomer
    sees a ring within the first minute."""

    def __init__(self, visitors: float | None = 60.0) -> None:
        visitors = visitors or None
        self.visitors = visitors
        self._first: asyncio.TimerHandle | None = None
        self._tasks = BackgroundTasks("demo")
        self.doorbird = DoorBirdSimulator(DoorBirdConfig(
            host=LOOPBACK, event_host=LOOPBACK, relays=["1", "2"],
            event_ports=[_free_udp_port(), _free_udp_port()], visitors=visitors,
            device_type="DoorBird D2101V", rtsp_port=0))  # 554 is privileged: any free port
        self.skybell = SkyBellSimulator(CloudConfig(
            host=LOOPBACK, devices=2, udp_host=LOOPBACK, udp_port=_free_udp_port(),
            visitors=visitors))

    async def start(self) -> None:
        await self.doorbird.start()
        await self.skybell.start()
        if self.visitors:
            loop = asyncio.get_running_loop()
            self._first = loop.call_later(
                self.FIRST_VISITOR_SECONDS,
                lambda: self._tasks.spawn(self.doorbird.device.ring(1)))

    async def stop(self) -> None:
        if self._first is not None:
            self._first.cancel()
        await self._tasks.cancel_all()
        await self.skybell.stop()
        await self.doorbird.stop()

    def settings(self, base: Settings) -> Settings:
        """The user's settings with the two simulated vendors as backends."""
        bird = self.doorbird.config
        doorbird = DoorBirdSettings(
            host=self.doorbird.address, username=bird.user, password=bird.password,
            name="Front gate", event_ports=bird.event_ports, listen_host=LOOPBACK,
            rtsp_port=self.doorbird.rtsp_port)
        skybell = SkyBellSettings(
            api_key=self.skybell.cloud.api_key, base_url=self.skybell.url, poll_interval=10,
            udp_port=self.skybell.config.udp_port, udp_listen=LOOPBACK)
        return base.model_copy(update={
            "doorbird": [doorbird], "skybell": [skybell],
            "server": base.server.model_copy(update={
                "data_dir": base.server.data_dir / "demo"})})

    # ------------------------------------------------------------------ the page's controls
    def _targets(self) -> dict[str, Callable[[str], Any]]:
        """Serial number to a function doing an action on the matching simulated device."""
        targets: dict[str, Callable[[str], Any]] = {}
        bird = self.doorbird.device

        def bird_action(action: str) -> Any:
            if action == "ring":
                return bird.ring(1)
            if action == "motion":
                return bird.motion()
            if action == "offline":
                bird.go_offline()
            elif action == "online":
                bird.offline = False
            return None

        targets[self.doorbird.config.mac] = bird_action
        cloud = self.skybell.cloud
        for device in cloud.devices.values():
            def sky_action(action: str, device: Any = device) -> Any:
                if action in ("ring", "motion"):
                    cloud.event(device, "doorbell" if action == "ring" else "motion")
                else:
                    cloud.set_online(device, action == "online")
                return None

            targets[device.serial] = sky_action
        return targets

    def install(self, server: BridgeServer) -> None:
        """Give the bridge's page its demo controls: a listing (GET) and the actions (POST,
        so that a browser says where they come from and other sites' pages are refused).
        Only demo mode calls this; a real bridge has none of these routes."""
        targets = self._targets()
        actions = ["ring", "motion", "offline", "online"]

        def devices(path: str, query: dict[str, str]) -> HttpReply:
            return 200, "application/json", orjson.dumps({s: actions for s in targets})

        def act(path: str, query: dict[str, str]) -> HttpReply:
            action = path.rsplit("/", 1)[1]
            target = targets.get(query.get("serial", ""))
            if target is None or action not in actions:
                return 404, "text/plain", b"no such demo device or action"
            outcome = target(action)
            if asyncio.iscoroutine(outcome):
                self._tasks.spawn(outcome)
            return 200, "application/json", b'{"ok":true}'

        server.http_routes["/demo/devices"] = devices
        server.action_routes.update({f"/demo/{a}": act for a in actions})

    def describe(self, url: str, token: bool = False) -> str:
        """Where to connect; with a client token set, where it goes (never the token)."""
        page = url.replace("ws", "http", 1) + ("/#token=TOKEN" if token else "/")
        bird = self.doorbird
        lines = [
            "",
            "eufy-bridge demo: a simulated DoorBird (two relays) and SkyBell account (two "
            "doorbells) on loopback.",
            f"  eufy clients:  {url}  (Home Assistant: Eufy Security integration, this host "
            "and port)",
            f"  the house:     {page}  (ring, move, take devices offline)",
            f"  ring DoorBird: curl -X POST '{bird.url}/_sim/ring?n=1'",
        ]
        for device in self.skybell.cloud.devices.values():
            lines.append(f"  ring {device.name}: curl -X POST "
                         f"{self.skybell.url}/_sim/devices/{device.device_id}/ring")
        lines.append("  stop:          Ctrl-C")
        return "\n".join(lines)


async def run_demo(base: Settings, visitors: float | None) -> None:
    """Run the simulators and a bridge pointed at them until SIGTERM or SIGINT."""
    demo = Demo(visitors)
    await demo.start()
    try:
        bridge = Bridge(demo.settings(base))
        demo.install(bridge.server)
        token = bridge.server.access.token_required
        await bridge.run(ready=lambda: print(demo.describe(bridge.url, token), flush=True))
    finally:
        await demo.stop()
