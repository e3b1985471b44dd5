"""A client's voice through a DoorBird's loudspeaker.

The station takes G.711 µ-law on ``audio-transmit.cgi``, one transmitter at a time, as one
request that lasts the whole talk (it answers 503 while someone else transmits).  A client's
AAC frames are decoded, resampled to 8 kHz and encoded to µ-law on a worker thread as they
come, and written to that request; a frame that does not decode is skipped and the talk goes
on.  The request carries a session id taken for this talk alone, invalidated afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from bridge.backends.doorbird.client import DoorBirdClient, DoorBirdError, Unreachable
from bridge.backends.doorbird.transcode import AacToMulaw
from bridge.media.talk import Talk

log = structlog.get_logger(component="backend.doorbird")

SILENCE = b"\xff" * 160
"""20 ms of µ-law silence, sent first: the request's headers leave with its first bytes, and
the station must see the request to refuse or accept it before the client speaks."""
REFUSAL_SECONDS = 0.5
"""After the request went out, how long the station has to refuse it (503, 204) before the
talk counts as started: it answers nothing else until the talk ends."""


async def talk(client: DoorBirdClient, talk: Talk) -> None:
    """Carry ``talk`` to the station until it ends; raises the station's refusal."""
    session, _ = await client.session()
    converter = AacToMulaw()
    sending, finished = asyncio.Event(), asyncio.Event()
    skipped = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal skipped
        try:
            yield SILENCE
            sending.set()
            async for adts in talk.audio():
                try:
                    mulaw = await asyncio.to_thread(converter.convert, adts)
                except ValueError as exc:
                    skipped += 1
                    log.debug("talkback frame skipped", serial=talk.serial, reason=str(exc))
                    continue
                if mulaw:
                    yield mulaw
        finally:
            finished.set()

    transmit = asyncio.ensure_future(client.transmit(session, body()))
    waits = [asyncio.ensure_future(e.wait()) for e in (sending, finished)]
    try:
        await asyncio.wait([transmit, waits[0]], return_when=asyncio.FIRST_COMPLETED)
        if not transmit.done():
            await asyncio.wait([transmit], timeout=REFUSAL_SECONDS)
        if transmit.done():
            transmit.result()  # the station's refusal, or:
            raise Unreachable("the station ended the talk at once")
        talk.started()
        await asyncio.wait([transmit, waits[1]], return_when=asyncio.FIRST_COMPLETED)
        if transmit.done():
            transmit.result()
            raise Unreachable("the station ended the talk")
    finally:
        for task in (transmit, *waits):
            task.cancel()
        await asyncio.wait([transmit, *waits])
        if skipped:
            log.info("talkback frames that did not decode were skipped", serial=talk.serial,
                     skipped=skipped)
        with contextlib.suppress(DoorBirdError):
            await client.invalidate(session)
