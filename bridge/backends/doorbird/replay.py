"""Which authentic DoorBird event packets are new events, and which are copies or replays.

The station sends each event several times on every port, and anyone on the LAN can record a
packet and send it again later: it still decrypts, so without more a recorded ring rings again
whenever the recorder likes.  Packets carry the station's own Unix time, and that clock may be
wrong by any amount (a day off is common enough), so the bridge never compares it with its own.
It compares the station with itself instead: from every accepted packet it learns the station's
clock offset (station time minus the bridge's monotonic time), keeps the largest one seen (a
replay is always older than the station's present, never newer) and drops a packet that is
older than the station's present by more than ``window`` seconds.  Within the window each
(event, timestamp) is accepted once.  Memory holds only the events of the last window.

A station clock that runs slow would drift out of the window over weeks, so the learnt present
is allowed to lag behind by ``DRIFT`` (86 s a day, far more than any quartz drifts and far less
than the age of a recorded packet worth replaying).

A station whose clock is set back (by hand, or by NTP after running a day ahead) would
otherwise look like a replayer forever and never ring again.  A replay is a copy: it carries the
nonce of a packet already sent, while the station seals every new packet with a fresh one.  So
the guard also remembers the nonces it accepted (``NONCE_SECONDS``, at most ``NONCE_COUNT``), and
a packet with a fresh nonce from more than ``JUMP`` seconds before the learnt present is taken as
the station's clock set back: the guard learns its new present and reports the event.  Only a
packet recorded while the bridge was not listening, and replayed more than ``JUMP`` later, could
still pass: it rings once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

Verdict = Literal["new", "repeat", "stale", "clock set back"]
DRIFT = 1e-3  # seconds the station's clock may lose per second of ours
JUMP = 3600.0
NONCE_SECONDS = 7 * 86400.0
NONCE_COUNT = 50_000


class ReplayGuard:
    """Accepts each (event, timestamp) of one station once, and nothing from its past."""

    def __init__(self, window: float = 120.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._offset: float | None = None  # the station's clock minus ours, at its newest
        self._offset_at = 0.0  # when (our clock) that offset was learnt
        self._seen: dict[tuple[str, int], int] = {}
        self._nonces: dict[bytes, float] = {}  # accepted packets' nonces -> when (our clock)

    def check(self, event: str, timestamp: int, nonce: bytes = b"") -> Verdict:
        """``new`` for an event not reported yet (now remembered), ``repeat`` for another copy
        of one, ``stale`` for a packet from before the window, ``clock set back`` for a new
        packet from long before it (the station's present is learnt anew; report it)."""
        now = self._clock()
        if nonce and nonce in self._nonces:
            return "repeat"
        offset = timestamp - now
        present = offset if self._offset is None else max(
            offset, self._offset - DRIFT * (now - self._offset_at))
        verdict: Verdict = "new"
        if offset < present - self.window:
            if not nonce or offset >= present - JUMP:
                return "stale"
            present, verdict = offset, "clock set back"
            self._offset, self._offset_at = offset, now
            self._seen.clear()
        key = (event, timestamp)
        if key in self._seen:
            return "repeat"
        if present == offset:
            self._offset, self._offset_at = offset, now
        oldest = now + present - self.window
        self._seen = {k: t for k, t in self._seen.items() if t >= oldest}
        self._seen[key] = timestamp
        if nonce:
            self._remember(nonce, now)
        return verdict

    def _remember(self, nonce: bytes, now: float) -> None:
        self._nonces[nonce] = now
        if len(self._nonces) > NONCE_COUNT or next(iter(self._nonces.values())) < \
                now - NONCE_SECONDS:
            self._nonces = {n: t for n, t in list(self._nonces.items())[-NONCE_COUNT:]
                            if t >= now - NONCE_SECONDS}
