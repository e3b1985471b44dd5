"""What one client connection has chosen and started.

A session holds the connection's schema and subscriptions (events, logs) and owns the tasks of
its commands still waiting for a backend: they end with the connection, so a client that
disconnects leaves nothing running.  Handlers receive the session and the driver, never the
server, so a handler can only reach what its own client may touch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from bridge.driver import Driver
    from bridge.server.livestream import Watcher

log = structlog.get_logger(component="bridge.server")

class Session:
    """One connection's protocol state and command tasks."""

    def __init__(self, driver: Driver, peer: Callable[[], str], max_in_flight: int,
                 settled: Callable[[], None], send: Callable[[bytes], None],
                 backlog: Callable[[], int]) -> None:
        self.driver = driver
        self.send = send
        """Queue a message for this client (answers and events are never dropped here)."""
        self.backlog = backlog
        """Bytes written for this client and not yet taken by it."""
        self.schema = 0
        self.listening = False
        self.logs = False
        self.max_in_flight = max_in_flight
        self._peer = peer
        self._settled = settled
        self._tasks: set[asyncio.Task[None]] = set()
        self.livestreams: dict[str, Watcher] = {}
        """The devices this connection watches (it started or joined their stream)."""

    @property
    def peer(self) -> str:
        """The client's address, for logs and the audit trail."""
        return self._peer()

    @property
    def full(self) -> bool:
        """As many commands in flight as one connection may have: read no more until one
        ends."""
        return len(self._tasks) >= self.max_in_flight

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], *,
              releases: Awaitable[Any] | None = None) -> None:
        """Run one command's remainder; the coroutine answers the client itself.

        ``releases``: the backend call the coroutine awaits.  When the connection goes before
        the task ever ran, that call is closed unstarted instead of being left for the garbage
        collector to complain about."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        if isinstance(releases, Coroutine):
            task.add_done_callback(lambda done: done.cancelled() and releases.close())

    def _ended(self, task: asyncio.Task[None]) -> None:
        was_full = self.full
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # a command task answers its own errors: one escaping it is a bug of the server
            log.error("command task died", peer=self.peer, exc_info=task.exception())
        if was_full:
            self._settled()

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel every command still running (the connection went, or the server stops);
        returns them so that a shutdown can wait for their answers."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        watching, self.livestreams = self.livestreams, {}
        for serial, watcher in watching.items():
            self.driver.streams.leave(serial, watcher)
        self.driver.talks.stop_owned_by(self)
        self.driver.downloads.cancel_owned_by(self)
        return tasks
