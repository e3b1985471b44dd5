"""Recording downloads: one at a time per device, owned by the connection that asked.

A download is a file, not a live view: every frame must reach the client, so frames are
handed over one by one and the backend waits while the client catches up (a live stream skips
frames instead).  The reference server allows one download per device, whoever asked: a second
request answers ``device_download_already_running`` to its owner and
``device_only_one_download_at_a_time`` to anyone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from bridge.driver.errors import (
    BridgeError,
    DownloadAlreadyRunning,
    DownloadNotRunning,
    OnlyOneDownloadAtATime,
    StationConnectionTimeout,
)
from bridge.media.hub import AudioFrame, MediaFrame, VideoFrame
from bridge.media.starting import started
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="bridge.media")

Deliver = Callable[[MediaFrame], Awaitable[None]]


class Download:
    """What a backend's ``download`` feeds: the recording's frames, in order."""

    def __init__(self, serial: str, owner: object, deliver: Deliver) -> None:
        self.serial = serial
        self.owner = owner
        self._deliver = deliver
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.finished: Callable[[], None] = lambda: None
        self.frames = 0

    def started(self) -> None:
        """The recording is found and about to flow: the client's ``start_download`` may
        succeed.  The first frame says it too."""
        if not self.ready.done():
            self.ready.set_result(None)

    async def video(self, frame: VideoFrame) -> None:
        await self._send(frame)

    async def audio(self, frame: AudioFrame) -> None:
        await self._send(frame)

    async def _send(self, frame: MediaFrame) -> None:
        self.started()
        self.frames += 1
        await self._deliver(frame)


DownloadFunction = Callable[[Download], Coroutine[Any, Any, None]]


class DownloadHub:
    """The running downloads of every device."""

    def __init__(self, *, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self._downloads: dict[str, Download] = {}
        self._tasks = BackgroundTasks("downloads")

    def downloading(self, serial: str) -> bool:
        return serial in self._downloads

    async def start(self, serial: str, owner: object, run: DownloadFunction, deliver: Deliver,
                    finished: Callable[[], None]) -> None:
        """Start ``owner``'s download; returns once the recording flows, raises when it cannot
        start.  ``finished`` is called when it has been delivered, broke off midway, or was
        cancelled by its owner (as the reference server reports a cancel), not when its
        connection went."""
        current = self._downloads.get(serial)
        if current is not None:
            if current.owner is owner:
                raise DownloadAlreadyRunning(f"this connection already downloads from {serial}")
            raise OnlyOneDownloadAtATime(f"someone else downloads from {serial}")
        download = self._downloads[serial] = Download(serial, owner, deliver)
        download.finished = finished
        download.task = self._tasks.spawn(self._run(download, run),
                                          name=f"download {serial}")
        await started(download.ready, self.start_timeout, lambda: self._cancel(download),
                      f"{serial}: the recording did not start within "
                      f"{self.start_timeout:g} s")

    def cancel(self, serial: str, owner: object) -> None:
        download = self._downloads.get(serial)
        if download is None or download.owner is not owner:
            raise DownloadNotRunning(f"this connection does not download from {serial}")
        self._cancel(download)
        if download.ready.done():
            download.finished()

    def cancel_owned_by(self, owner: object) -> None:
        for download in [d for d in self._downloads.values() if d.owner is owner]:
            self._cancel(download)

    async def stop_all(self) -> None:
        for download in list(self._downloads.values()):
            self._cancel(download)
        await self._tasks.cancel_all()

    def _cancel(self, download: Download) -> None:
        if self._downloads.get(download.serial) is download:
            del self._downloads[download.serial]
        if download.task is not None:
            download.task.cancel()

    async def _run(self, download: Download, run: DownloadFunction) -> None:
        error: BaseException | None = None
        try:
            await run(download)
        except asyncio.CancelledError:
            error = StationConnectionTimeout(f"{download.serial}: download cancelled")
            raise
        except BridgeError as exc:
            error = exc
        except Exception as exc:
            log.exception("download failed", serial=download.serial)
            error = StationConnectionTimeout(f"{download.serial}: {exc or type(exc).__name__}")
        finally:
            mine = self._downloads.get(download.serial) is download
            if mine:
                del self._downloads[download.serial]
            if not download.ready.done():
                download.ready.set_exception(error or StationConnectionTimeout(
                    f"{download.serial}: the recording is empty"))
                download.ready.exception()  # retrieved: the starter gets it
            elif mine:
                if error is not None:
                    log.warning("download broke off", serial=download.serial,
                                reason=getattr(error, "detail", str(error)),
                                frames=download.frames)
                download.finished()
