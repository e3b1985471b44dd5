"""Argon2i keys of DoorBird version 1 event packets, derived without hurting the bridge.

A version 1 packet names its own salt, and each salt costs one Argon2i derivation (tens of
milliseconds of CPU and up to 32 MiB).  Anyone on the LAN can send such packets, so the work is
done in worker threads (the event loop keeps serving), each salt is derived once (the station
repeats every packet several times on each port: those copies wait for the same derivation),
keys are cached, and derivations are rate-limited: a flood of packets with fresh salts costs at
most ``rate`` derivations a second, and what exceeds it is dropped, not queued.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from bridge.backends.doorbird import packets

log = structlog.get_logger(component="backend.doorbird")

Derivation = tuple[bytes, int, int]  # salt, opslimit, memlimit
Deliver = Callable[[packets.DoorBirdEvent], None]
Spawn = Callable[[Coroutine[Any, Any, None]], object]

WAITING_PER_SALT = 8  # distinct packets kept while their key is derived (copies are one)
DROP_LOG_SECONDS = 60.0


class V1Keys:
    """Opens version 1 packets for one user, deriving each salt's key at most once."""

    def __init__(self, password: str, spawn: Spawn, *, workers: int = 1,
                 burst: int = 8, rate: float = 1.0, cache_size: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._password = password
        self._spawn = spawn  # the owner's background tasks, cancelled when it stops
        self._workers = asyncio.Semaphore(workers)
        self._burst = burst
        self._rate = rate
        self._cache_size = cache_size
        self._clock = clock
        self._tokens = float(burst)
        self._refilled = clock()
        self._cache: OrderedDict[Derivation, bytes] = OrderedDict()
        self._waiting: dict[Derivation, dict[packets.V1Packet, Deliver]] = {}
        self.dropped = 0
        self._dropped_logged = 0
        self._drop_logged_at = float("-inf")

    @property
    def deriving(self) -> int:
        """Derivations admitted and not finished (running or waiting for a worker)."""
        return len(self._waiting)

    def open(self, packet: packets.V1Packet, deliver: Deliver) -> None:
        """Hand the packet's event to ``deliver``: now when its key is known, else once it is.

        Packets that do not open with this user's key (other users', forged ones) deliver
        nothing; packets beyond the derivation budget are dropped."""
        derivation = packet.derivation
        key = self._cache.get(derivation)
        if key is not None:
            self._cache.move_to_end(derivation)
            if (event := packet.open(key)) is not None:
                deliver(event)
            return
        waiting = self._waiting.get(derivation)
        if waiting is not None:
            if len(waiting) < WAITING_PER_SALT:
                waiting.setdefault(packet, deliver)
            return
        if not self._admit():
            self._drop()
            return
        self._waiting[derivation] = {packet: deliver}
        self._spawn(self._derive(derivation))

    def _admit(self) -> bool:
        """Token bucket: ``burst`` derivations at once, then ``rate`` a second."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1 or len(self._waiting) >= self._burst:
            return False
        self._tokens -= 1
        return True

    def _drop(self) -> None:
        self.dropped += 1
        now = self._clock()
        if now - self._drop_logged_at >= DROP_LOG_SECONDS:
            log.debug("version 1 event packets dropped: too many key derivations",
                      dropped=self.dropped - self._dropped_logged)
            self._drop_logged_at, self._dropped_logged = now, self.dropped

    async def _derive(self, derivation: Derivation) -> None:
        try:
            async with self._workers:
                salt, ops, mem = derivation
                key = await asyncio.to_thread(packets.v1_key, self._password, salt, ops, mem)
        finally:
            waiting = self._waiting.pop(derivation, {})
        self._cache[derivation] = key
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        for packet, deliver in waiting.items():
            if (event := packet.open(key)) is not None:
                deliver(event)
