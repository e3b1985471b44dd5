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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

Verdict = Literal["new", "repeat", "stale"]
DRIFT = 1e-3  # seconds the station's clock may lose per second of ours


class ReplayGuard:
    """Accepts each (event, timestamp) of one station once, and nothing from its past."""

    def __init__(self, window: float = 120.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._offset: float | None = None  # the station's clock minus ours, at its newest
        self._offset_at = 0.0  # when (our clock) that offset was learnt
        self._seen: dict[tuple[str, int], int] = {}

    def check(self, event: str, timestamp: int) -> Verdict:
        """``new`` for an event not reported yet (now remembered), ``repeat`` for another copy
        of one within the window, ``stale`` for a packet from before the window."""
        now = self._clock()
        offset = timestamp - now
        present = offset if self._offset is None else max(
            offset, self._offset - DRIFT * (now - self._offset_at))
        if offset < present - self.window:
            return "stale"
        key = (event, timestamp)
        if key in self._seen:
            return "repeat"
        if present == offset:
            self._offset, self._offset_at = offset, now
        oldest = now + present - self.window
        self._seen = {k: t for k, t in self._seen.items() if t >= oldest}
        self._seen[key] = timestamp
        return "new"
