"""Waiting for a vendor's stream, talk or download to start, the same way for all three."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bridge.driver.errors import StationConnectionTimeout


async def started(ready: asyncio.Future[Any], seconds: float, give_up: Callable[[], None],
                  too_slow: str) -> None:
    """Wait at most ``seconds`` for ``ready``; raise what it raises.

    ``ready`` belongs to the task doing the work, which others may be waiting on too, so it is
    shielded: a caller that is cancelled or gives up must not cancel it for everyone. Whenever
    this caller does not get a start (too slow, a failure, its own cancellation), ``give_up``
    undoes its part; too slow becomes ``StationConnectionTimeout(too_slow)``, the code eufy
    clients show for a device that did not answer in time.
    """
    try:
        async with asyncio.timeout(seconds):
            await asyncio.shield(ready)
    except TimeoutError:
        give_up()
        raise StationConnectionTimeout(too_slow) from None
    except BaseException:
        give_up()
        raise
