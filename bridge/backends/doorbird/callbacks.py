"""The optional ``http`` event path: the station calls the bridge back over HTTP.

Users of other integrations lost events, and the DoorBird app its own notifications, when an
integration rewrote the station's favorites and schedules.  So this path only ever adds: one
HTTP favorite per event it needs (titled ``eufy-bridge <serial> ...``), and one output per
schedule entry that points at such a favorite; every other favorite, entry and output stays as
it was. On shutdown it removes exactly what it added.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import structlog

from bridge.backends.doorbird.client import DoorBirdClient

log = structlog.get_logger(component="backend.doorbird")

ALWAYS = {"weekdays": [{"from": "0", "to": "604799"}]}  # the whole week


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

    async def register(self) -> None:
        await self._remove_stale()
        schedules = await self.client.schedules()
        buttons = sorted({str(e.get("param", "")) for e in schedules
                          if e.get("input") == "doorbell" and e.get("param")} or {"1"})
        targets = [("doorbell", b, f"ring/{b}") for b in buttons] + [("motion", "", "motion")]
        for input_, param, event in targets:
            fav_id = await self._favorite(f"{self._title} {event}",
                                          f"{self.base}/{event}?token={self.token}")
            entry = next((e for e in schedules
                          if e.get("input") == input_ and str(e.get("param", "")) == param),
                         {"input": input_, "param": param, "output": []})
            entry = {**entry, "output": [*entry.get("output", []), {
                "event": "http", "param": fav_id, "enabled": "1", "schedule": ALWAYS}]}
            await self.client.save_schedule(entry)
        log.info("DoorBird calls the bridge back over HTTP", serial=self.serial,
                 buttons=buttons)

    async def _favorite(self, title: str, url: str) -> str:
        await self.client.save_favorite("http", title, url)
        favorites = (await self.client.favorites()).get("http", {})
        fav_id = next(i for i, f in favorites.items() if f.get("title") == title)
        self._ours.add(fav_id)
        return fav_id

    async def _remove_stale(self) -> None:
        """Entries left by an earlier run that did not shut down cleanly."""
        favorites = (await self.client.favorites()).get("http", {})
        stale = {i for i, f in favorites.items() if f.get("title", "").startswith(self._title)}
        if stale:
            self._ours = stale
            await self.unregister()

    async def unregister(self) -> None:
        if not self._ours:
            return
        for entry in await self.client.schedules():
            outputs = entry.get("output", [])
            kept = [o for o in outputs
                    if not (o.get("event") == "http" and str(o.get("param")) in self._ours)]
            if len(kept) == len(outputs):
                continue
            if kept:
                await self.client.save_schedule({**entry, "output": kept})
            else:
                await self.client.remove_schedule(entry["input"], str(entry.get("param", "")))
        for fav_id in sorted(self._ours):
            await self.client.remove_favorite("http", fav_id)
        self._ours.clear()

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
