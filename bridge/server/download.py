"""A connection's download: the recording's frames as ``download ... data`` events.

Unlike a live view, nothing may be skipped, so each frame waits until the client has taken
most of what was already sent; a client that stops reading altogether for
``STALL_SECONDS`` loses the download rather than the bridge's memory.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from bridge.driver.errors import StationConnectionTimeout
from bridge.media.buffers import media_event
from bridge.media.hub import MediaFrame, VideoFrame
from bridge.server.livestream import MEDIA_BACKLOG, notice

if TYPE_CHECKING:
    from bridge.server.session import Session

STALL_SECONDS = 30.0
DRAIN_POLL = 0.005


def download_event(serial: str, frame: MediaFrame) -> bytes:
    if isinstance(frame, VideoFrame):
        info = frame.info
        return media_event("download video data", serial, frame.data, {
            "videoCodec": info.codec, "videoFPS": info.fps,
            "videoHeight": info.height, "videoWidth": info.width})
    return media_event("download audio data", serial, frame.data, {"audioCodec": frame.codec})


class DownloadEvents:
    """Sends one download's events to the connection that started it."""

    def __init__(self, session: Session, serial: str) -> None:
        self.session = session
        self.serial = serial
        self._active = asyncio.Event()

    def start(self) -> None:
        """After the start command's answer: ``download started``, then the frames."""
        asyncio.get_running_loop().call_soon(self._activate)

    def _activate(self) -> None:
        self.session.send(notice(self.serial, "download started"))
        self._active.set()

    async def deliver(self, frame: MediaFrame) -> None:
        await self._active.wait()
        if self.session.backlog() > MEDIA_BACKLOG:
            waited = time.monotonic()
            while self.session.backlog() > MEDIA_BACKLOG // 2:
                if time.monotonic() - waited > STALL_SECONDS:
                    raise StationConnectionTimeout(
                        f"{self.serial}: the client took nothing for {STALL_SECONDS:g} s")
                await asyncio.sleep(DRAIN_POLL)
        self.session.send(download_event(self.serial, frame))

    def finished(self) -> None:
        if self._active.is_set():
            self.session.send(notice(self.serial, "download finished"))
