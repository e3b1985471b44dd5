"""Background tasks owned by one component and cancelled together when it stops.

asyncio keeps only weak references to tasks, so a fire-and-forget task must be held somewhere
until it ends; this is that place, with the one way to stop them all.  A task that dies of an
error nobody awaits is logged when it dies, not discovered months later by its absence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(component="bridge.tasks")


class BackgroundTasks:
    """A set of running tasks with one owner."""

    def __init__(self, owner: str = "bridge") -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None,
              awaited: bool = False) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this owner.  ``awaited``: somebody awaits the task and
        handles its errors, so they are not logged here."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended_awaited if awaited else self._ended)
        return task

    def _ended_awaited(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, even when every waiter gave up

    def _ended(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("background task died", owner=self.owner, task=task.get_name(),
                      error=repr(error), exc_info=error)

    async def cancel_all(self) -> None:
        """Cancel every task, including any spawned while this runs, and wait for each to end.

        Their errors are logged, not raised.  The caller's own cancellation (a timeout around
        this call, a shutdown) is never swallowed: it interrupts the wait and propagates, and
        the tasks have been asked to stop all the same.
        """
        while self._tasks:
            tasks = tuple(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)


def foreign_cancellation() -> bool:
    """Whether a ``CancelledError`` being handled was not meant for the current task.

    aiohttp cancels the waiters of a session closed under them, so a request can end in
    ``CancelledError`` although nobody cancelled the task making it.  Such an error is a
    failure of that request and must be treated as one; a real cancellation (the task's own
    ``cancelling()`` count is above zero) must always propagate.
    """
    task = asyncio.current_task()
    return task is None or task.cancelling() == 0


class InFlight:
    """The requests a vendor client has in flight, ended together when the client closes.

    Closing an aiohttp session does not end a request already holding a connection: it would
    wait for its read timeout, long after its backend stopped.  Each request runs as a task of
    its own here, so that closing cancels them all at once; their callers see a cancellation
    that is not theirs (:func:`foreign_cancellation`) and report the device unreachable.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await task  # cancelling the caller cancels the request too

    def cancel_all(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
