"""Downloads of recorded clips: one at a time per device, each owned by the connection that
asked for it.

A backend's ``download`` finds the clip and feeds a :class:`DownloadSink` its frames (the
same :class:`VideoFrame` and :class:`AudioFrame` as live streams); the sink turns each into a
``download video data`` or ``download audio data`` event for its one receiver, the connection.

A download is a file, not a live picture: a frame skipped is a clip damaged for good.  So
where a live stream skips frames for a slow client, a download waits for the client to take
what it was sent (its backlog to fall under :data:`DOWNLOAD_BACKLOG`), for
:data:`DRAIN_SECONDS` at most; a client that takes nothing for that long ends its download.
Waiting also paces the backend's side: the clip is never copied into an unbounded queue.

The events keep the reference server's order: the start command's answer, ``download
started``, the media, ``download finished`` (also after a cancel, and after a download that
ended early: the client learns that nothing more comes).  A connection that goes cancels its
download silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import orjson
import structlog

from bridge.driver.errors import (
    BridgeError,
    DownloadAlreadyRunning,
    DownloadNotRunning,
    OnlyOneDownloadAtATime,
    StationConnectionTimeout,
)
from bridge.media.buffers import media_event
from bridge.media.hub import MediaFrame, VideoFrame
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="bridge.media")

DOWNLOAD_SCHEMA = 3
"""The schema from which download events exist."""

DOWNLOAD_BACKLOG = 2 * 1024 * 1024
"""Bytes waiting for the client above which the next frame waits (about two seconds of
720p video as event text)."""

DRAIN_SECONDS = 30.0
"""How long a download waits for a client that takes nothing before it gives up."""


class Receiver(Protocol):
    """Where a download's events go: one client connection (its session)."""

    @property
    def schema(self) -> int: ...

    def send(self, data: bytes) -> None:
        """Queue a message for the client; never dropped."""

    def backlog(self) -> int:
        """Bytes sent to the client and not yet taken by it."""


class ClientStalled(StationConnectionTimeout):
    """The client took nothing for :data:`DRAIN_SECONDS`."""


def notice(serial: str, name: str) -> bytes:
    return orjson.dumps({"type": "event", "event": {"source": "device", "event": name,
                                                    "serialNumber": serial}})


def event_text(serial: str, frame: MediaFrame) -> bytes:
    if isinstance(frame, VideoFrame):
        info = frame.info
        return media_event("download video data", serial, frame.data, {
            "videoCodec": info.codec, "videoFPS": info.fps,
            "videoHeight": info.height, "videoWidth": info.width})
    return media_event("download audio data", serial, frame.data, {"audioCodec": frame.codec})


class DownloadSink:
    """What a backend's ``download`` feeds: one download's frames, on to its client."""

    def __init__(self, download: Download) -> None:
        self._download = download
        self.serial = download.serial

    def started(self) -> None:
        """The clip was found and its media follows: the client's ``start_download`` may
        succeed.  Sending the first frame says it too."""
        self._download.found()

    async def send(self, frame: MediaFrame) -> None:
        """Send one frame once the client has room for it; raises :class:`ClientStalled`
        when the client takes nothing for too long."""
        await self._download.deliver(frame)


class Download:
    """One device's download for one receiver."""

    def __init__(self, serial: str, receiver: Receiver, *, backlog: int,
                 drain_seconds: float) -> None:
        self.serial = serial
        self.receiver = receiver
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.frames = 0
        self.ended = False
        self._backlog = backlog
        self._drain_seconds = drain_seconds
        self._begun = asyncio.Event()
        self._complete = False  # the backend is done; "download finished" is due
        self._told_finished = False

    def found(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def begin(self) -> None:
        """After the start command's answer: ``download started``, then let frames go."""
        if self.ended or self._begun.is_set():
            return
        self._announce("download started")
        self._begun.set()
        if self._complete:
            self._tell_finished()

    def finish(self) -> None:
        """The backend is done (or stopped): ``download finished`` once the client was told
        that it started."""
        self._complete = True
        if self._begun.is_set():
            self._tell_finished()

    def _tell_finished(self) -> None:
        if not self._told_finished:
            self._told_finished = True
            self._announce("download finished")

    async def deliver(self, frame: MediaFrame) -> None:
        self.found()
        if not self._begun.is_set():
            try:  # the start's answer comes next, unless the start fails and cancels this
                async with asyncio.timeout(self._drain_seconds):
                    await self._begun.wait()
            except TimeoutError:
                raise ClientStalled(f"{self.serial}: the download never began") from None
        receiver = self.receiver
        if receiver.backlog() > self._backlog:
            await self._drain()
        if self.ended:
            return
        if receiver.schema >= DOWNLOAD_SCHEMA:
            receiver.send(event_text(self.serial, frame))
        self.frames += 1

    async def _drain(self) -> None:
        pause, waited = 0.005, 0.0
        while self.receiver.backlog() > self._backlog:
            if waited >= self._drain_seconds:
                raise ClientStalled(
                    f"{self.serial}: the client took nothing for {self._drain_seconds:g} s")
            await asyncio.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.05)

    def _announce(self, name: str) -> None:
        if self.receiver.schema >= DOWNLOAD_SCHEMA:
            self.receiver.send(notice(self.serial, name))


DownloadFunction = Callable[[DownloadSink], Coroutine[Any, Any, None]]
"""Runs one download until the clip has been fed (or the download is cancelled)."""


class DownloadHub:
    """The downloads of every device."""

    def __init__(self, *, start_timeout: float = 10.0, backlog: int = DOWNLOAD_BACKLOG,
                 drain_seconds: float = DRAIN_SECONDS) -> None:
        self.start_timeout = start_timeout
        self.backlog = backlog
        self.drain_seconds = drain_seconds
        self._downloads: dict[str, Download] = {}
        self._tasks = BackgroundTasks("downloads")

    def downloading(self, serial: str) -> bool:
        """Whether a download of the device runs (or is being started)."""
        return serial in self._downloads

    @property
    def running(self) -> int:
        """Download tasks alive, including those ending."""
        return len(self._tasks)

    async def start(self, serial: str, receiver: Receiver, run: DownloadFunction) -> Download:
        """Start ``receiver``'s download of the device; returns once the backend has found
        the clip (then call :meth:`Download.begin` after the answer), raises the backend's
        error (or a timeout) when it cannot start."""
        current = self._downloads.get(serial)
        if current is not None:
            if current.receiver is receiver:
                raise DownloadAlreadyRunning(f"this connection already downloads from {serial}")
            raise OnlyOneDownloadAtATime(f"another connection downloads from {serial}")
        download = self._downloads[serial] = Download(
            serial, receiver, backlog=self.backlog, drain_seconds=self.drain_seconds)
        download.task = self._tasks.spawn(self._run(download, run), name=f"download {serial}")
        try:
            async with asyncio.timeout(self.start_timeout):
                await asyncio.shield(download.ready)
        except TimeoutError:
            self._end(download)
            raise StationConnectionTimeout(
                f"{serial}: no clip within {self.start_timeout:g} s") from None
        except BaseException:
            self._end(download)
            raise
        return download

    def cancel(self, serial: str, receiver: Receiver) -> Download:
        """End ``receiver``'s download (its media stops at once); the caller tells the client
        with :meth:`Download.finish` after the answer."""
        download = self._downloads.get(serial)
        if download is None or download.receiver is not receiver:
            raise DownloadNotRunning(f"this connection does not download from {serial}")
        self._end(download)
        return download

    def cancel_owned_by(self, receiver: Receiver) -> None:
        """The connection went: its download ends without a word."""
        for download in [d for d in self._downloads.values() if d.receiver is receiver]:
            self._end(download)

    async def stop_all(self) -> None:
        """End every download (the backends are about to stop); clients hear that their
        download finished."""
        for download in list(self._downloads.values()):
            self._end(download)
            download.finish()
        await self._tasks.cancel_all()

    def _end(self, download: Download) -> None:
        if self._downloads.get(download.serial) is download:
            del self._downloads[download.serial]
        download.ended = True
        if download.task is not None:
            download.task.cancel()

    async def _run(self, download: Download, run: DownloadFunction) -> None:
        error: BaseException | None = None
        reason: str | None = None
        try:
            await run(DownloadSink(download))
        except asyncio.CancelledError:
            error = StationConnectionTimeout(f"{download.serial}: the download was cancelled")
            raise
        except BridgeError as exc:
            error, reason = exc, exc.detail
        except Exception as exc:
            log.exception("download failed", serial=download.serial)
            reason = str(exc) or type(exc).__name__
            error = StationConnectionTimeout(f"{download.serial}: {reason}")
        finally:
            if not download.ready.done():
                if error is None:
                    download.ready.set_result(None)  # nothing to send: started, then finished
                else:
                    download.ready.set_exception(error)
                    download.ready.exception()  # retrieved: the starter gets it, nobody else
            if self._downloads.get(download.serial) is download:
                del self._downloads[download.serial]
                if download.ready.exception() is None:
                    if reason is not None:
                        log.warning("download ended early", serial=download.serial,
                                    reason=reason, frames=download.frames)
                    download.finish()
