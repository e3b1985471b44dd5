"""Live video over plain HTTP on the bridge's port: ``/live/<serial>.mp4`` and ``.jpg``.

Browsers, VLC, ffplay and PyAV play fragmented MP4 from a URL with no other software. Each
device's HTTP viewers share one subscription to its hub stream (see :mod:`bridge.media.hub`)
and one muxer (:mod:`bridge.media.fmp4`), run on its own worker thread: the stream is muxed
once however many viewers watch, and since every fragment starts with a key frame, a late
joiner gets the init segment and then the next fragment, and a viewer that does not read
skips whole fragments once its backlog is over :data:`LIVE_BACKLOG` (it loses picture up to
the next key frame, never memory). The first viewer starts the upstream, the last one
leaving stops it, with the hub's rules, alongside eufy clients and RTSP players.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import structlog

from bridge.driver.errors import BridgeError
from bridge.media.fmp4 import Fmp4Muxer
from bridge.media.hub import AudioFrame, MediaFrame, VideoFrame
from bridge.media.still import jpeg
from bridge.server.connection import Streamed

if TYPE_CHECKING:
    from bridge.driver import Driver
    from bridge.driver.model import Device
    from bridge.server.connection import Connection

log = structlog.get_logger(component="bridge.live")

LIVE_BACKLOG = 2 * 1024 * 1024
"""Bytes waiting for a viewer beyond which it skips fragments (about two seconds of 720p)."""
MAX_QUEUED = 48
"""Frames waiting for the muxer beyond which video skips to the next key frame (a machine too
busy to mux loses picture, not memory)."""
MAX_GOP = 10.0
"""Seconds of video after a key frame beyond which the rest waits for the next key frame: a
fragment ends only at a key frame, and the muxer holds it whole until then."""
AUDIO_WAIT = 1.0
"""Seconds from a new stream's first video that it waits for audio before its tracks are
settled without it (an MP4's tracks are fixed by its init segment)."""
START_TIMEOUT = 20.0
"""Seconds for the upstream to start and bring its first key frame."""
STALLED = 30.0
"""Seconds a viewer may stay over its backlog before it is cut off."""
_PATH = re.compile(r"/live/([^/]+)\.(mp4|jpg)")
HEADERS = ("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
           "Connection: close\r\n")


def head(status: str, content_type: str, length: int | None = None) -> bytes:
    """An HTTP/1.1 response head; without a length the body ends when the connection does."""
    size = "" if length is None else f"Content-Length: {length}\r\n"
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{size}{HEADERS}\r\n").encode()


def plain(status: str, text: str) -> bytes:
    body = text.encode()
    return head(status, "text/plain; charset=utf-8", len(body)) + body


class Viewer:
    """One HTTP client of a device's MP4 stream."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.started = False
        self.skipped = 0
        self._behind_since: float | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self, init: bytes) -> None:
        self.conn.write(head("200 OK", "video/mp4") + init)
        self.started = True

    def fragment(self, data: bytes) -> None:
        if not self.started:
            return
        if self.conn.backlog() > LIVE_BACKLOG:
            self.skipped += 1
            now = asyncio.get_running_loop().time()
            if self._behind_since is None:
                self._behind_since = now
            elif now - self._behind_since > STALLED:
                self.conn.abort()  # a player that never reads does not keep its socket
            return
        self._behind_since = None
        self.conn.write(data)

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class LiveMp4:
    """One device's stream as fragmented MP4, shared by its HTTP viewers; a hub subscriber."""

    def __init__(self, driver: Driver, device: Device, forget: Callable[[LiveMp4], None]) -> None:
        self.driver = driver
        self.device = device
        self.serial = device.serial
        self._forget = forget
        self.viewers: list[Viewer] = []
        self.latest_key: VideoFrame | None = None
        self.init: bytes | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None  # when the first video came
        self._audio_seen: AudioFrame | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"mp4 {self.serial}")
        self._muxer: Fmp4Muxer | None = None
        self._settled = False
        self._queued = 0
        self._skipping = False
        self._closed = False
        self.joined = asyncio.ensure_future(self._join())

    async def _join(self) -> None:
        try:
            await self.driver.watch(self.device, self)
        except Exception as exc:  # the viewers waiting are answered 503
            self._fail(exc)
            self._close()

    # ------------------------------------------------------------------ hub subscriber
    def media(self, frame: MediaFrame) -> None:
        if self._closed:
            return
        if isinstance(frame, AudioFrame):
            self._audio_seen = self._audio_seen or frame
        elif frame.keyframe:
            self.latest_key = frame
        if not self._settled:
            if not isinstance(frame, VideoFrame):
                return
            if self._since is None:
                self._since = self._loop.time()
            if not frame.keyframe or (
                    self._audio_seen is None and self._loop.time() - self._since < AUDIO_WAIT):
                return
            self._settled = True
            self._submit(self._open, frame, self._audio_seen)
            return
        if isinstance(frame, VideoFrame):
            if self._queued > MAX_QUEUED or (
                    self.latest_key is not None and frame.pts - self.latest_key.pts > MAX_GOP):
                self._skipping = True
            if self._skipping and not frame.keyframe:
                return
            self._skipping = False
        elif self._skipping or self._queued > MAX_QUEUED:
            return
        self._submit(self._mux, frame)

    def ended(self, reason: str | None) -> None:
        """The upstream stopped for everyone: every viewer's answer ends."""
        self._fail(BridgeError(reason or "the stream ended"))
        self._close()

    # ------------------------------------------------------------------ viewers
    def add(self, viewer: Viewer) -> None:
        self.viewers.append(viewer)
        if self.init is not None:
            viewer.start(self.init)

    def remove(self, viewer: Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        if not self.viewers:
            self._close()

    # ------------------------------------------------------------------ muxing (worker)
    def _submit(self, work: Callable[..., list[bytes]], *args: object) -> None:
        self._queued += 1
        self._worker.submit(work, *args).add_done_callback(self._back)

    def _back(self, done: object) -> None:
        """On the worker thread: the loop takes it from here (unless it has stopped)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to watch
            self._loop.call_soon_threadsafe(self._muxed, done)

    def _open(self, first: VideoFrame, audio: AudioFrame | None) -> list[bytes]:
        self._muxer = Fmp4Muxer(first, audio)
        return [self._muxer.init, *self._muxer.video(first)]

    def _mux(self, frame: MediaFrame) -> list[bytes]:
        muxer = self._muxer
        if muxer is None:
            return []
        return muxer.video(frame) if isinstance(frame, VideoFrame) else muxer.audio(frame)

    def _muxed(self, done: object) -> None:
        """Back on the loop: hand the finished fragments to every viewer."""
        self._queued -= 1
        try:
            fragments = done.result()  # type: ignore[attr-defined]
        except Exception as exc:
            log.error("live MP4 muxing failed", serial=self.serial, error=str(exc))
            self._fail(exc)
            self._close()
            return
        if self._closed:
            return
        if self.init is None and fragments:
            self.init, fragments = fragments[0], fragments[1:]
            self.ready.set_result(None)
            for viewer in self.viewers:
                viewer.start(self.init)
        for data in fragments:
            for viewer in self.viewers:
                viewer.fragment(data)

    # ------------------------------------------------------------------ end
    def _fail(self, exc: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: the viewers waiting get it
        for viewer in self.viewers:
            viewer.finish()

    def _close(self) -> None:
        """Leave the hub (the last viewer of every kind stops the upstream) and the worker
        (closing the muxer there)."""
        if self._closed:
            return
        self._closed = True
        self._forget(self)
        for viewer in self.viewers:
            viewer.finish()
        if not self.joined.done():
            self.joined.cancel()
        self.driver.streams.leave(self.serial, self)
        if self._muxer is not None:
            self._worker.submit(self._muxer.close)
        self._worker.shutdown(wait=False)


class _KeyFrame:
    """A one-shot subscriber: the next key frame of a stream."""

    def __init__(self) -> None:
        self.frame: asyncio.Future[VideoFrame] = asyncio.get_running_loop().create_future()

    def media(self, frame: MediaFrame) -> None:
        if isinstance(frame, VideoFrame) and frame.keyframe and not self.frame.done():
            self.frame.set_result(frame)

    def ended(self, reason: str | None) -> None:
        if not self.frame.done():
            self.frame.set_exception(BridgeError(reason or "the stream ended"))


class LiveHttp:
    """The ``/live/`` routes of the bridge's port."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.streams: dict[str, LiveMp4] = {}
        self.viewers: set[Viewer] = set()

    def respond(self, path: str) -> Streamed | None:
        """The streamed answer to ``GET path`` (under ``/live/``); None when no camera."""
        match = _PATH.fullmatch(path)
        device = self.driver.devices.get(match.group(1)) if match else None
        if match is None or device is None or "start_livestream" not in device.commands:
            return None
        if match.group(2) == "mp4":
            return Streamed(lambda conn: self._mp4(device, conn))
        return Streamed(lambda conn: self._jpg(device, conn))

    def close(self) -> None:
        """The server stops: every viewer's answer ends."""
        for viewer in list(self.viewers):
            viewer.finish()

    async def _mp4(self, device: Device, conn: Connection) -> None:
        stream = self.streams.get(device.serial)
        if stream is None:
            stream = self.streams[device.serial] = LiveMp4(self.driver, device, self._forget)
        viewer = Viewer(conn)
        self.viewers.add(viewer)
        stream.add(viewer)
        try:
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    await asyncio.shield(stream.ready)
            except (Exception, TimeoutError) as exc:
                log.warning("live MP4 could not start", serial=device.serial, error=str(exc))
                conn.write(plain("503 Service Unavailable", "the camera's stream is not "
                                                            "available"))
                return
            await viewer.done
        finally:
            self.viewers.discard(viewer)
            stream.remove(viewer)
            if viewer.skipped:
                log.info("live MP4 viewer fell behind", serial=device.serial,
                         fragments_skipped=viewer.skipped)

    async def _jpg(self, device: Device, conn: Connection) -> None:
        """The running stream's latest key frame, else the next key frame of a stream joined
        just for it: a current picture, never a stale one."""
        stream = self.streams.get(device.serial)
        frame = stream.latest_key if stream is not None else None
        if frame is None:
            waiter = _KeyFrame()
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    await self.driver.watch(device, waiter)
                    frame = await waiter.frame
            except (BridgeError, TimeoutError) as exc:
                log.warning("live still could not be taken", serial=device.serial,
                            error=str(exc))
                conn.write(plain("503 Service Unavailable", "the camera's stream is not "
                                                            "available"))
                return
            finally:
                self.driver.streams.leave(device.serial, waiter)
        picture = await asyncio.to_thread(jpeg, frame)
        conn.write(head("200 OK", "image/jpeg", len(picture)) + picture)

    def _forget(self, stream: LiveMp4) -> None:
        if self.streams.get(stream.serial) is stream:
            del self.streams[stream.serial]
