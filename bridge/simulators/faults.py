"""Trouble on demand: faults a simulator switches on and off while it runs.

Real devices and clouds misbehave in a handful of ways a bridge must survive: they answer
slowly, drop connections, answer 5xx, send malformed JSON or garbage.  Every simulator knows
those (:data:`HTTP_FAULTS`, applied to its API by :func:`http_faults`) plus its vendor's own.
They are switched with ``POST /_sim/faults`` and a JSON object (a value switches a fault on,
``false`` or ``null`` off; an unknown name answers 400 and changes nothing), or at start with
``eufy-bridge simulate ... --fault NAME[=VALUE]``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger(component="simulator")

HTTP_FAULTS = {
    "latency_ms": "every API answer waits this many milliseconds",
    "http_status": "every API call answers this status (e.g. 500, 503)",
    "reset": "every API connection is dropped without an answer",
    "malformed_json": "JSON answers are cut off in the middle",
    "garbage": "every API answer is random bytes",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Faults:
    """The faults a simulator knows, and those switched on."""

    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = dict(known)
        self.active: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        return self.active.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self.active.get(name)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Switch faults on (a value) or off (false, null); ValueError for an unknown name,
        before anything changes."""
        unknown = sorted(set(changes) - set(self.known))
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {sorted(self.known)}")
        for name, value in changes.items():
            if value is None or value is False:
                self.active.pop(name, None)
            else:
                self.active[name] = value
        log.info("faults", active=self.active)

    async def handle(self, request: web.Request) -> web.Response:
        """``GET`` or ``POST /_sim/faults``."""
        if request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("a JSON object of faults")
                self.update(body)
            except ValueError as exc:
                return web.json_response({"error": str(exc), "known": self.known}, status=400)
        return web.json_response(self.active)


def parse_cli(values: Iterable[str]) -> dict[str, Any]:
    """``NAME`` or ``NAME=VALUE`` (VALUE read as JSON when it is, else as text)."""
    faults: dict[str, Any] = {}
    for item in values:
        name, sep, text = item.partition("=")
        if not sep:
            faults[name] = True
            continue
        try:
            faults[name] = json.loads(text)
        except ValueError:
            faults[name] = text
    return faults


def http_faults(faults: Faults, applies: Callable[[web.Request], bool]) -> Any:
    """An aiohttp middleware applying :data:`HTTP_FAULTS` to the requests ``applies`` to."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not faults.active or not applies(request):
            return await handler(request)
        latency = faults.get("latency_ms")
        if latency:
            await asyncio.sleep(float(latency) / 1000)
        if faults.get("reset"):
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        status = faults.get("http_status")
        if status:
            return web.Response(status=int(status), text="injected failure")
        if faults.get("garbage"):
            return web.Response(body=secrets.token_bytes(64),
                                content_type="application/octet-stream")
        response = await handler(request)
        if faults.get("malformed_json") and isinstance(response, web.Response) \
                and response.content_type == "application/json" and response.body:
            body = bytes(response.body)  # type: ignore[arg-type]
            return web.Response(status=response.status, body=body[:max(1, len(body) // 2)],
                                content_type="application/json")
        return response

    return middleware
