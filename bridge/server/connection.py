"""One client connection: its schema, its subscriptions and its outgoing queue.

Every outgoing message goes through one queue drained by one writer task, so results and
events leave in the order they were produced and a slow client never blocks the event bus.
Events are dropped (and counted) when a client falls too far behind; results never are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger(component="bridge.server")


class Connection:
    """Per-connection protocol state."""

    def __init__(self, ws: ServerConnection, *, max_queued_events: int) -> None:
        self.ws = ws
        self.schema = 0
        self.listening = False
        self.logs = False
        self.dropped_events = 0
        self._max_queued = max_queued_events
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._writer = asyncio.create_task(self._write_loop(), name="ws-writer")

    @property
    def peer(self) -> str:
        address = self.ws.remote_address
        return f"{address[0]}:{address[1]}" if address else "?"

    def send(self, text: str) -> None:
        """Queue a result (never dropped)."""
        if self._closed:
            return
        self._queue.append(text)
        self._ready.set()

    def send_event(self, text: str) -> None:
        """Queue an event, unless the client is too far behind to take more."""
        if self._closed:
            return
        if len(self._queue) >= self._max_queued:
            self.dropped_events += 1
            if self.dropped_events == 1 or self.dropped_events % 1000 == 0:
                log.warning("client too slow, events dropped", peer=self.peer,
                            dropped=self.dropped_events)
            return
        self._queue.append(text)
        self._ready.set()

    async def flush(self, timeout: float) -> None:
        """Wait until everything queued has been handed to the socket (bounded)."""
        try:
            async with asyncio.timeout(timeout):
                while self._queue and not self._writer.done():
                    await asyncio.sleep(0.005)
        except TimeoutError:
            pass

    async def _write_loop(self) -> None:
        queue, ready, ws = self._queue, self._ready, self.ws
        try:
            while True:
                await ready.wait()
                ready.clear()
                while queue:
                    await ws.send(queue.popleft())
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            queue.clear()

    async def close(self) -> None:
        self._closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
