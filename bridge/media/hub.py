"""The stream hub: one shared upstream per device, any number of subscribers.

A backend knows how to bring one device's live media in (its ``stream`` method feeds an
:class:`Upstream`); the hub runs that at most once per device, however many clients watch.
The upstream starts with the first subscriber and stops when the last one leaves; one that
dies ends every subscription with a reason, never silence.

Media never travels the event bus: the bus drops events for a slow reader, and dropping an
arbitrary H.264 frame corrupts the picture until the next key frame.  Each subscriber instead
takes frames as they come and decides, for its own client, when to skip to the next key frame
(see :class:`KeyFrameGate`); a subscriber never blocks the hub or the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from bridge.driver.errors import BridgeError, StationConnectionTimeout
from bridge.media.starting import started
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="bridge.media")


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a player needs to know of the video, read from the stream itself."""

    codec: str  # "H264"
    fps: float
    width: int
    height: int


@dataclass(slots=True)
class VideoFrame:
    """One H.264 access unit, Annex B with 4-byte start codes; a key frame carries its SPS
    and PPS in front, so that a player can start at any key frame."""

    data: bytes
    keyframe: bool
    info: VideoInfo
    pts: float = 0.0  # seconds
    cache: dict[Any, Any] = field(default_factory=dict)
    """Encodings of this frame shared by subscribers (a JSON event text per schema shape)."""


@dataclass(slots=True)
class AudioFrame:
    """One AAC-LC frame in ADTS framing."""

    data: bytes
    codec: str = "AAC"
    pts: float = 0.0
    cache: dict[Any, Any] = field(default_factory=dict)


MediaFrame = VideoFrame | AudioFrame


class Subscriber(Protocol):
    """Someone watching a stream: a eufy connection, an RTSP player, a browser."""

    def media(self, frame: MediaFrame) -> None:
        """A frame; must not block (skip frames instead, see :class:`KeyFrameGate`)."""

    def ended(self, reason: str | None) -> None:
        """The upstream stopped for everyone (``reason`` says why when it was not asked to)."""


class Upstream:
    """What a backend's ``stream`` feeds: frames in, fanned out to every subscriber."""

    def __init__(self, serial: str, fan_out: Callable[[MediaFrame], None]) -> None:
        self.serial = serial
        self._fan_out = fan_out
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.frames = 0

    def started(self) -> None:
        """Media flows: the clients' ``start_livestream`` may now succeed.  Sending the first
        frame says it too."""
        if not self.ready.done():
            self.ready.set_result(None)

    def video(self, frame: VideoFrame) -> None:
        self.started()
        self.frames += 1
        self._fan_out(frame)

    def audio(self, frame: AudioFrame) -> None:
        self.started()
        self._fan_out(frame)


StreamFunction = Callable[[Upstream], Coroutine[Any, Any, None]]
"""Runs one device's upstream until cancelled (or until the device's stream ends)."""


class _Stream:
    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.subscribers: list[Subscriber] = []
        self.upstream = Upstream(serial, self._fan_out)
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    def _fan_out(self, frame: MediaFrame) -> None:
        for subscriber in tuple(self.subscribers):
            try:
                subscriber.media(frame)
            except Exception:  # one broken subscriber must not end the stream for the others
                log.exception("media subscriber failed", serial=self.serial)


class StreamHub:
    """The live streams of every device, each shared by its subscribers."""

    def __init__(self, *, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self._streams: dict[str, _Stream] = {}
        self._tasks = BackgroundTasks("streams")

    def is_streaming(self, serial: str) -> bool:
        """Whether the device's upstream runs and media flows."""
        stream = self._streams.get(serial)
        if stream is None:
            return False
        ready = stream.upstream.ready
        return ready.done() and not ready.cancelled() and ready.exception() is None

    def subscribed(self, serial: str, subscriber: Subscriber) -> bool:
        stream = self._streams.get(serial)
        return stream is not None and subscriber in stream.subscribers

    @property
    def active(self) -> int:
        return sum(1 for s in self._streams if self.is_streaming(s))

    async def join(self, serial: str, subscriber: Subscriber, run: StreamFunction) -> None:
        """Subscribe, starting the upstream with ``run`` when nobody watches yet; returns once
        media flows, raises the upstream's error (or a timeout) when it cannot start."""
        stream = self._streams.get(serial)
        if stream is None:
            stream = self._streams[serial] = _Stream(serial)
            stream.task = self._tasks.spawn(self._run(stream, run), name=f"stream {serial}")
        stream.subscribers.append(subscriber)
        await started(stream.upstream.ready, self.start_timeout,
                      lambda: self.leave(serial, subscriber),
                      f"{serial}: no media within {self.start_timeout:g} s")

    def leave(self, serial: str, subscriber: Subscriber) -> bool:
        """Unsubscribe (False when not subscribed); the last one out stops the upstream."""
        stream = self._streams.get(serial)
        if stream is None or subscriber not in stream.subscribers:
            return False
        stream.subscribers.remove(subscriber)
        if not stream.subscribers:
            self._stop(stream)
        return True

    async def stop_all(self) -> None:
        """End every stream (the backends are about to stop)."""
        for stream in list(self._streams.values()):
            self._stop(stream)
        await self._tasks.cancel_all()

    def _stop(self, stream: _Stream) -> None:
        stream.stopping = True
        if self._streams.get(stream.serial) is stream:
            del self._streams[stream.serial]
        if stream.task is not None:
            stream.task.cancel()

    async def _run(self, stream: _Stream, run: StreamFunction) -> None:
        reason: str | None = None
        error: BaseException | None = None
        try:
            await run(stream.upstream)
            reason = "the device ended the stream"
        except asyncio.CancelledError:
            if not stream.stopping:
                reason = "the stream was cancelled"
            error = StationConnectionTimeout(f"{stream.serial}: stream stopped")
            raise
        except BridgeError as exc:
            reason, error = exc.detail, exc
        except Exception as exc:
            log.exception("stream failed", serial=stream.serial)
            reason = str(exc) or type(exc).__name__
            error = StationConnectionTimeout(f"{stream.serial}: {reason}")
        finally:
            ready = stream.upstream.ready
            if not ready.done():
                ready.set_exception(error or StationConnectionTimeout(
                    f"{stream.serial}: the stream ended before it started"))
                ready.exception()  # retrieved: joiners get it, nobody else must
            if self._streams.get(stream.serial) is stream:
                del self._streams[stream.serial]
            if reason is not None:
                log.warning("live stream ended", serial=stream.serial, reason=reason)
            for subscriber in stream.subscribers:
                try:
                    subscriber.ended(None if stream.stopping else reason)
                except Exception:
                    log.exception("media subscriber failed", serial=stream.serial)
            stream.subscribers.clear()


class KeyFrameGate:
    """Per-subscriber decision to pass or skip a frame.

    A subscriber starts at a key frame; when its client falls behind (``congested``), video is
    skipped up to the next key frame and audio skipped while congested, so a slow client loses
    picture, never memory, and never slows anyone else.
    """

    def __init__(self) -> None:
        self.waiting_for_key = True
        self.skipped = 0

    def admit(self, frame: MediaFrame, congested: bool) -> bool:
        if isinstance(frame, VideoFrame):
            if congested:
                self.waiting_for_key = True
            elif self.waiting_for_key and frame.keyframe:
                self.waiting_for_key = False
            if self.waiting_for_key:
                self.skipped += 1
                return False
            return True
        if congested or self.waiting_for_key:
            self.skipped += 1
            return False
        return True
