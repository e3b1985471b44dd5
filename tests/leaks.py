"""What a test's process holds, counted before and after, to show that something it did
(a stream, a talk, an outage) left no task, socket or file behind."""

from __future__ import annotations

import asyncio
import os

from tests.wsclient import until


def resources() -> tuple[int, int]:
    """Tasks, and file descriptors (sockets, files, pipes) this process holds."""
    return len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd"))


async def settled(before: tuple[int, int]) -> None:
    """Wait until tasks and file descriptors are back to ``before`` (a pooled connection may
    take its keep-alive time to go); fail naming the tasks still there."""
    try:
        await until(lambda: resources()[0] <= before[0] and resources()[1] <= before[1])
    except TimeoutError:
        names = sorted(f"{t.get_name()}: {t.get_coro()}" for t in asyncio.all_tasks())
        raise AssertionError(f"before {before}, now {resources()}: {names}") from None
