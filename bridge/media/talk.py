"""Talkback: one client at a time speaks through a device.

A talk carries the client's audio (AAC-LC frames in ADTS framing, as eufy clients send them)
to the device's backend, which converts and sends it the vendor's way for as long as the talk
lasts.  One talk per device: a doorbell has one loudspeaker.  A talk ends when its client stops
it or goes away, when nothing arrives for ``idle_seconds`` (a client that crashed mid-sentence
must not hold the loudspeaker), or when the device's side ends; the talker is told each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import structlog

from bridge.driver.errors import (
    BridgeError,
    OnlyOneTalkbackAtATime,
    StationConnectionTimeout,
    TalkbackAlreadyRunning,
    TalkbackNotRunning,
)
from bridge.media.starting import started
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="bridge.media")

QUEUE_FRAMES = 50
"""Audio frames waiting for the device (about three seconds): beyond that the oldest go."""


class Talk:
    """One talk: what the backend's ``talk`` reads its audio from."""

    def __init__(self, serial: str, owner: object, idle_seconds: float) -> None:
        self.serial = serial
        self.owner = owner
        self.idle_seconds = idle_seconds
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.frames_received = 0
        self.frames_dropped = 0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_FRAMES)
        self.task: asyncio.Task[None] | None = None
        self.ending: str | None = None

    def started(self) -> None:
        """The device takes audio now: the client's ``start_talkback`` may succeed."""
        if not self.ready.done():
            self.ready.set_result(None)

    def put(self, adts: bytes) -> None:
        self.frames_received += 1
        if self._queue.full():
            self._queue.get_nowait()
            self.frames_dropped += 1
        self._queue.put_nowait(adts)

    def finish(self) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def audio(self) -> AsyncIterator[bytes]:
        """The client's ADTS frames until the talk ends (stopped, or idle too long)."""
        while True:
            try:
                async with asyncio.timeout(self.idle_seconds):
                    frame = await self._queue.get()
            except TimeoutError:
                self.ending = f"no audio for {self.idle_seconds:g} s"
                return
            if frame is None:
                return
            yield frame


TalkFunction = Callable[[Talk], Coroutine[Any, Any, None]]
Ended = Callable[[str | None], None]


class TalkHub:
    """The talks of every device."""

    def __init__(self, *, start_timeout: float = 10.0, idle_seconds: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self.idle_seconds = idle_seconds
        self._talks: dict[str, Talk] = {}
        self._ended: dict[str, Ended] = {}
        self._tasks = BackgroundTasks("talks")

    def ongoing(self, serial: str) -> bool:
        """Whether someone talks through the device (the device takes their audio)."""
        talk = self._talks.get(serial)
        if talk is None or not talk.ready.done() or talk.ready.cancelled():
            return False
        return talk.ready.exception() is None

    def talk_of(self, serial: str, owner: object) -> Talk:
        talk = self._talks.get(serial)
        if talk is None or talk.owner is not owner:
            raise TalkbackNotRunning(f"this connection does not talk to {serial}")
        return talk

    async def start(self, serial: str, owner: object, run: TalkFunction, ended: Ended) -> None:
        """Start a talk for ``owner``; returns once the device takes audio.  ``ended`` is
        called when the talk ends other than by :meth:`stop` (with the reason)."""
        current = self._talks.get(serial)
        if current is not None:
            if current.owner is owner:
                raise TalkbackAlreadyRunning(f"this connection already talks to {serial}")
            raise OnlyOneTalkbackAtATime(f"someone else talks to {serial}")
        talk = self._talks[serial] = Talk(serial, owner, self.idle_seconds)
        self._ended[serial] = ended
        talk.task = self._tasks.spawn(self._run(talk, run), name=f"talk {serial}")
        await started(talk.ready, self.start_timeout, lambda: self._end(talk, quietly=True),
                      f"{serial} did not take audio")

    def stop(self, serial: str, owner: object) -> None:
        self._end(self.talk_of(serial, owner), quietly=True)

    def stop_owned_by(self, owner: object) -> None:
        for talk in [t for t in self._talks.values() if t.owner is owner]:
            self._end(talk, quietly=True)

    async def stop_all(self) -> None:
        for talk in list(self._talks.values()):
            self._end(talk, quietly=True)
        await self._tasks.cancel_all()

    def _end(self, talk: Talk, *, quietly: bool) -> None:
        """Let the backend finish what it has (it reads the end of the audio), then forget."""
        if self._talks.get(talk.serial) is talk:
            del self._talks[talk.serial]
            ended = self._ended.pop(talk.serial, None)
            if not quietly and ended is not None:
                ended(talk.ending)
        talk.finish()
        if not talk.ready.done() and talk.task is not None:
            talk.task.cancel()

    async def _run(self, talk: Talk, run: TalkFunction) -> None:
        error: BaseException | None = None
        try:
            await run(talk)
            talk.ending = talk.ending or "the device ended the talk"
        except asyncio.CancelledError:
            error = StationConnectionTimeout(f"{talk.serial}: talk cancelled")
            raise
        except BridgeError as exc:
            talk.ending, error = exc.detail, exc
        except Exception as exc:
            log.exception("talk failed", serial=talk.serial)
            talk.ending = str(exc) or type(exc).__name__
            error = StationConnectionTimeout(f"{talk.serial}: {talk.ending}")
        finally:
            if not talk.ready.done():
                talk.ready.set_exception(error or StationConnectionTimeout(
                    f"{talk.serial}: the talk ended before it started"))
                talk.ready.exception()
            if self._talks.get(talk.serial) is talk:
                log.info("talk ended", serial=talk.serial, reason=talk.ending)
                self._end(talk, quietly=False)
