"""One eufy connection watching one device's live stream.

The connection is a subscriber of the device's shared stream (:mod:`bridge.media.hub`): it
receives ``livestream video data`` and ``livestream audio data`` events, and only it does; the
JSON text of each frame's event is built once and shared by every connection watching.  A
connection whose client falls behind skips video up to the next key frame (and audio while it
is behind), so it loses picture, never memory, and never delays another client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bridge.media.buffers import media_event
from bridge.media.hub import KeyFrameGate, MediaFrame, VideoFrame
from bridge.server.jsonio import dumps

if TYPE_CHECKING:
    from bridge.server.session import Session

MEDIA_BACKLOG = 2 * 1024 * 1024
"""Bytes waiting for a watching client beyond which its video skips to the next key frame
(about two seconds of a 720p stream)."""

MEDIA_SCHEMA = 2
"""The schema from which livestream events exist."""


def event_text(serial: str, frame: MediaFrame) -> bytes:
    """The complete event message for one frame, built once per frame and shared."""
    text = frame.cache.get("ws")
    if text is None:
        if isinstance(frame, VideoFrame):
            info = frame.info
            text = media_event("livestream video data", serial, frame.data, {
                "videoCodec": info.codec, "videoFPS": info.fps,
                "videoHeight": info.height, "videoWidth": info.width})
        else:
            text = media_event("livestream audio data", serial, frame.data,
                               {"audioCodec": frame.codec})
        frame.cache["ws"] = text
    return text


def notice(serial: str, name: str) -> bytes:
    return dumps({"type": "event", "event": {"source": "device", "event": name,
                                             "serialNumber": serial}})


class Watcher:
    """A connection's subscription to a device's stream."""

    def __init__(self, session: Session, serial: str) -> None:
        self.session = session
        self.serial = serial
        self.active = False  # frames before the start command's answer are not sent
        self.started = False  # a stream that fails to start answers the command instead
        self.gate = KeyFrameGate()

    def media(self, frame: MediaFrame) -> None:
        session = self.session
        if not self.active or session.schema < MEDIA_SCHEMA:
            return
        if self.gate.admit(frame, session.backlog() > MEDIA_BACKLOG):
            session.send(event_text(self.serial, frame))

    def ended(self, reason: str | None) -> None:
        """The stream ended for everyone: this connection no longer watches it."""
        if self.session.livestreams.get(self.serial) is self:
            del self.session.livestreams[self.serial]
            if self.started:
                self.announce("livestream stopped")

    def start(self) -> None:
        """After the start command's answer: say so, then let frames through."""
        self.started = True
        asyncio.get_running_loop().call_soon(self._activate)

    def _activate(self) -> None:
        if self.session.livestreams.get(self.serial) is self:
            self.announce("livestream started")
            self.active = True

    def announce(self, name: str) -> None:
        if self.session.schema >= MEDIA_SCHEMA:
            self.session.send(notice(self.serial, name))

