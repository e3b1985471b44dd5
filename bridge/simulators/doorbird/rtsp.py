"""The station's RTSP service: ``/mpeg/media.amp`` and, on models that have them, the 720p and
1080p paths, served by the project's RTSP server with the station's own rules.

- Access as on the real station: a ``?sessionid=`` from ``getsession.cgi`` in the URL (so that
  no password travels in it) or the user's Basic credentials; anything else is 401.
- The live-view permission window ("watch always", or within 5 minutes of a ring) applies to
  DESCRIBE, SETUP and PLAY.  Outside it they are answered **403 Forbidden**: the credentials
  are good but this user may not watch now, which is what ``video.cgi``'s 204 says over HTTP
  and what RTSP players report as such (a 401 would make them retry credentials).
- Each player holds one of the station's stream slots, shared with ``video.cgi`` and
  ``audio-receive.cgi``; with none left the PLAY is answered **453 Not Enough Bandwidth**, the
  RTSP status for what HTTP streams answer with 509.
- When the station goes offline or reboots, its RTSP connections die and the port refuses
  connections until it is reachable again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from bridge.media.rtsp import Refused, RtspServer, auth
from bridge.media.rtsp.protocol import Request
from bridge.simulators.doorbird.device import LIVE_AFTER_RING, DoorBirdDevice
from bridge.simulators.doorbird.live import LiveCamera
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="simulator.doorbird")

DEFAULT_PATH = "/mpeg/media.amp"
WATCHING = frozenset({"DESCRIBE", "SETUP", "PLAY"})


def stream_paths(device_type: str, firmware: str) -> dict[str, tuple[int, int]]:
    """The RTSP paths of a model and their picture sizes.  The seed: ``/mpeg/media.amp``
    everywhere, ``/mpeg/720p/media.amp`` on D21x from firmware 129, ``/mpeg/1080p/media.amp``
    on D11x only.  The default path is VGA, as on the stations that also offer 720p."""
    model = device_type.upper().removeprefix("DOORBIRD").strip()
    try:
        version = int(firmware)
    except ValueError:
        version = 0
    paths = {DEFAULT_PATH: (640, 480)}
    if model.startswith("D21") and version >= 129:
        paths["/mpeg/720p/media.amp"] = (1280, 720)
    if model.startswith("D11"):
        paths["/mpeg/1080p/media.amp"] = (1920, 1080)
    return paths


class StationRtsp:
    """The RTSP server of one simulated station (see the module documentation)."""

    def __init__(self, device: DoorBirdDevice) -> None:
        config = device.config
        self.device = device
        self.cameras = {path: LiveCamera(width, height, device.visitor_present)
                        for path, (width, height)
                        in stream_paths(config.device_type, config.firmware).items()}
        self.port: int | None = None
        self.server: RtspServer | None = None
        self._credentials = auth.any_of(auth.basic(config.user, config.password),
                                        auth.query_token("sessionid", device.session_valid))
        self._tasks = BackgroundTasks("simulator rtsp")
        self._closing: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self, port: int) -> None:
        await asyncio.gather(*(camera.prepare() for camera in self.cameras.values()))
        try:
            await self._listen(port)
        except OSError as exc:  # taken, or privileged: a free one, so that it runs anywhere
            await self._listen(0)
            log.info("port unavailable, using a free one", stream="rtsp", wanted=port,
                     port=self.port, reason=exc.strerror)
        self.device.outage_listeners.append(self._outage)
        self.device.fault_listeners.append(self._cut)

    def _cut(self) -> None:
        """``truncate_streams``: every player is cut off (each may come back)."""
        if self.device.faults.get("truncate_streams") and self.server is not None:
            for path in self.cameras:
                self.server.end(path)

    async def stop(self) -> None:
        self._stopped = True
        if self._cut in self.device.fault_listeners:
            self.device.fault_listeners.remove(self._cut)
        if self._outage in self.device.outage_listeners:
            self.device.outage_listeners.remove(self._outage)
        await self._tasks.cancel_all()
        if self._closing is not None:
            await self._closing
        if self.server is not None:
            await self.server.close()
            self.server = None

    def url(self, path: str = DEFAULT_PATH) -> str:
        return f"rtsp://{self.device.config.host}:{self.port}{path}"

    async def _listen(self, port: int) -> None:
        server = RtspServer(self.cameras.get, authorize=self._authorize, admit=self._admit,
                            host=self.device.config.host, port=port, realm="DoorBird",
                            name="DoorBird")
        await server.start()
        self.server, self.port = server, server.port

    def _authorize(self, request: Request) -> bool:
        if not self._credentials(request):
            return False
        if request.method in WATCHING and not self.device.may_watch(LIVE_AFTER_RING):
            raise Refused(403)
        return True

    def _admit(self, request: Request) -> Callable[[], None]:
        release = self.device.slots.take()
        if release is None:
            log.info("rtsp refused: every stream slot is taken", path=request.path,
                     slots=self.device.slots.limit)
            raise Refused(453)
        return release

    def _outage(self) -> None:
        """Down with the station (the closing is awaited by :meth:`stop` even when it comes
        first), and back on the same port once the station is reachable."""
        if self.server is None or self._stopped:
            return
        server, self.server = self.server, None
        self._closing = asyncio.create_task(server.close(), name="rtsp outage")
        self._tasks.spawn(self._reopen(self._closing), name="rtsp back")

    async def _reopen(self, closing: asyncio.Task[None]) -> None:
        await asyncio.shield(closing)
        while not self.device.reachable:
            await asyncio.sleep(0.1)
        assert self.port is not None
        await self._listen(self.port)
