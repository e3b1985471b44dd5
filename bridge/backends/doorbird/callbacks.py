"""The optional ``http`` event path: the station calls the bridge back over HTTP.

Users of other integrations lost events, and the DoorBird app its own notifications, when an
integration rewrote the station's favorites and schedules.  So this path only ever adds: one
HTTP favorite per event it needs (titled ``eufy-bridge <serial> ...``), and one output per
schedule entry that points at such a favorite.  A real station's schedule already lists an
entry per call button and one for motion, each with the app's outputs: ours are appended to
those, and an entry is created only where the station has none.  Every other favorite, entry
and output stays as it was, byte for byte; on shutdown exactly what was added goes again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import structlog

from bridge.backends.doorbird.client import DoorBirdClient, Refused

log = structlog.get_logger(component="backend.doorbird")

# The whole week, written as stations list it themselves: a weekly span whose start lies
# after its end wraps around the week (recorded station answers in Home Assistant's tests).
ALWAYS = {"weekdays": [{"from": "108000", "to": "107999"}]}


class HttpCallbacks:
    """Registers (and later removes) the favorites and schedule outputs of one station."""

    def __init__(self, client: DoorBirdClient, serial: str, callback_url: str) -> None:
        self.client = client
        self.serial = serial
        self.base = f"{callback_url.rstrip('/')}/doorbird/{serial}"
        self.route = f"/doorbird/{serial}/"
        self.token = secrets.token_urlsafe(18)
        self._title = f"eufy-bridge {serial}"
        self._ours: set[str] = set()
        self._created: set[tuple[str, str]] = set()
        """Schedule entries (input, param) that this run added whole, so removes whole."""

    async def register(self) -> None:
        await self._remove_stale()
        schedules = await self._schedule()
        buttons = sorted({str(e.get("param", "")) for e in schedules
                          if e.get("input") == "doorbell" and e.get("param")} or {"1"})
        targets = [("doorbell", b, f"ring/{b}") for b in buttons] + [("motion", "", "motion")]
        for input_, param, event in targets:
            fav_id = await self._favorite(f"{self._title} {event}",
                                          f"{self.base}/{event}?token={self.token}")
            entry = next((e for e in schedules
                          if e.get("input") == input_ and str(e.get("param", "")) == param),
                         None)
            created = entry is None
            if entry is None:
                entry = {"input": input_, "param": param, "output": []}
            entry = {**entry, "output": [*entry.get("output", []), {
                "event": "http", "param": fav_id, "enabled": "1", "schedule": ALWAYS}]}
            await self.client.save_schedule(entry)
            if created:
                self._created.add((input_, param))
        log.info("DoorBird calls the bridge back over HTTP", serial=self.serial,
                 buttons=buttons)

    async def _favorite(self, title: str, url: str) -> str:
        await self.client.save_favorite("http", title, url)
        fav_id = next((i for i, f in (await self._http_favorites()).items()
                       if f.get("title") == title), None)
        if fav_id is None:
            raise Refused(f"{self.client.address}: the station did not keep a favorite")
        self._ours.add(fav_id)
        return fav_id

    async def _remove_stale(self) -> None:
        """Favorites and outputs left by an earlier run that did not shut down cleanly.  Which
        entries that run created is not known, so they stay, without outputs: an entry the
        user had is never removed."""
        stale = {i for i, f in (await self._http_favorites()).items()
                 if str(f.get("title", "")).startswith(self._title)}
        if stale:
            self._ours = stale
            await self.unregister()

    async def unregister(self) -> None:
        if not self._ours:
            return
        for entry in await self._schedule():
            outputs = entry["output"]
            kept = [o for o in outputs if not (isinstance(o, dict) and o.get("event") == "http"
                                               and str(o.get("param")) in self._ours)]
            if len(kept) == len(outputs):
                continue
            key = (str(entry.get("input")), str(entry.get("param", "")))
            if not kept and key in self._created:
                await self.client.remove_schedule(*key)
            else:
                await self.client.save_schedule({**entry, "output": kept})
        for fav_id in sorted(self._ours):
            await self.client.remove_favorite("http", fav_id)
        self._ours.clear()
        self._created.clear()

    async def _schedule(self) -> list[dict[str, Any]]:
        """The station's schedule entries that have the documented shape; the answer comes
        from the network, and entries of any other shape are never touched."""
        try:
            entries = await self.client.schedules()
        except ValueError:
            raise Refused(f"{self.client.address}: schedule.cgi answered no JSON") from None
        if not isinstance(entries, list):
            raise Refused(f"{self.client.address}: schedule.cgi answered no list")
        return [e for e in entries
                if isinstance(e, dict) and isinstance(e.get("output"), list)]

    async def _http_favorites(self) -> dict[str, dict[str, Any]]:
        """The station's HTTP favorites by id (those of the documented shape)."""
        try:
            favorites = await self.client.favorites()
        except ValueError:
            raise Refused(f"{self.client.address}: favorites.cgi answered no JSON") from None
        http = favorites.get("http") if isinstance(favorites, dict) else None
        if not isinstance(http, dict):
            return {}
        return {str(i): f for i, f in http.items() if isinstance(f, dict)}

    def handler(self, ring: Callable[[int], None], motion: Callable[[], None]
                ) -> Callable[[str, dict[str, str]], tuple[int, str, bytes]]:
        """The bridge-side HTTP endpoint the favorites point at."""

        def answer(path: str, query: dict[str, str]) -> tuple[int, str, bytes]:
            if not secrets.compare_digest(query.get("token", ""), self.token):
                return 403, "text/plain", b"forbidden"
            event = path[len(self.route):]
            if event == "motion":
                motion()
                return 200, "text/plain", b"ok"
            kind, _, button = event.partition("/")
            if kind == "ring" and button.isdigit():
                ring(int(button))
                return 200, "text/plain", b"ok"
            return 404, "text/plain", b"unknown event"

        return answer
