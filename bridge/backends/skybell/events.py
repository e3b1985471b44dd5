"""Merging SkyBell's three event sources without doubles, across restarts.

LAN packets arrive first but carry no activity; webhooks and polled activities carry an
activity id and the cloud's event time.  A LAN event and a cloud event of the same doorbell and
kind close in time are one event; a cloud activity seen once (by webhook or poll) is never
reported again.  What has been reported, and how far polling has read, is kept in the data
directory, so an outage loses nothing and a restart repeats nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

MATCH_WINDOW_MS = 20_000
MEMORY_MS = 15 * 60_000
ACTIVITY_IDS = 2000
"""Activity ids remembered, however old: a poll may read back far further than an overlap when
the cloud's clock was set back, and an id is what tells an old activity from a new one."""


@dataclass
class Seen:
    device_id: str
    kind: str
    time_ms: int
    lan: bool
    activity_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {"d": self.device_id, "k": self.kind, "t": self.time_ms, "l": self.lan,
                "a": self.activity_id}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Seen:
        return cls(str(raw["d"]), str(raw["k"]), int(raw["t"]), bool(raw["l"]), raw.get("a"))


class EventLedger:
    """Decides whether an event is new, and remembers what it has let through."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.activity_ids: dict[str, None] = {}  # oldest first
        self.cursor_ms: int | None = None
        """How far polling has read, by the cloud's clock."""

    def lan(self, device_id: str, kind: str, now_ms: int | None = None) -> bool:
        """A LAN packet: new unless a cloud event of it was already reported."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._forget(now_ms)
        for entry in self.seen:
            if (entry.device_id, entry.kind) == (device_id, kind) and not entry.lan \
                    and abs(entry.time_ms - now_ms) <= MATCH_WINDOW_MS:
                entry.lan = True
                return False
        self.seen.append(Seen(device_id, kind, now_ms, True, None))
        return True

    def cloud(self, device_id: str, kind: str, activity_id: str, time_ms: int) -> bool:
        """A webhook or polled activity: new unless its id or its LAN twin was reported.

        ``time_ms`` is the activity's time by our clock (the cloud's may be off), so that it
        can be matched with a LAN packet's."""
        if activity_id in self.activity_ids:
            return False
        self.activity_ids[activity_id] = None
        while len(self.activity_ids) > ACTIVITY_IDS:
            del self.activity_ids[next(iter(self.activity_ids))]
        self._forget(int(time.time() * 1000))
        for entry in self.seen:
            if (entry.device_id, entry.kind) == (device_id, kind) and entry.lan \
                    and entry.activity_id is None \
                    and abs(entry.time_ms - time_ms) <= MATCH_WINDOW_MS:
                entry.activity_id = activity_id
                return False
        self.seen.append(Seen(device_id, kind, time_ms, False, activity_id))
        return True

    def _forget(self, now_ms: int) -> None:
        self.seen = [e for e in self.seen if now_ms - e.time_ms < MEMORY_MS]

    def to_json(self) -> dict[str, Any]:
        return {"cursor_ms": self.cursor_ms, "seen": [e.as_json() for e in self.seen],
                "ids": list(self.activity_ids)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EventLedger:
        ledger = cls()
        ledger.cursor_ms = raw.get("cursor_ms")
        try:
            ledger.seen = [Seen.from_json(e) for e in raw.get("seen", [])]
        except (KeyError, TypeError, ValueError):
            ledger.seen = []
        ids = raw.get("ids")
        ledger.activity_ids = dict.fromkeys(str(i) for i in ids[-ACTIVITY_IDS:]) \
            if isinstance(ids, list) else {}
        return ledger
