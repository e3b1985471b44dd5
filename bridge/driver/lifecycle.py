"""The one owner of the backends' running state.

``driver.connect``, ``driver.disconnect``, the bridge's start and its shutdown all go through
here, so that no two of them ever start or stop a backend at the same time.  A request records
the wanted state (the last request wins) and waits until one runner task has acted on it; the
runner starts or stops backends one transition at a time, cancels a start in progress when a
disconnect arrives, and retries backends that failed to start, with a growing pause, for as
long as the driver is wanted connected.  The driver says ``connected`` once when the backends
have been started, ``disconnected`` once when they have been stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from bridge.driver.errors import BridgeError
from bridge.tasks import BackgroundTasks

if TYPE_CHECKING:
    from bridge.driver.backend import Backend
    from bridge.driver.driver import Driver

log = structlog.get_logger(component="bridge.driver")


class Lifecycle:
    """Starts and stops the driver's backends, one transition at a time."""

    def __init__(
        self,
        driver: Driver,
        *,
        start_timeout: float,
        stop_timeout: float,
        retry_seconds: float = 30.0,
        max_retry_seconds: float = 600.0,
        before_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.driver = driver
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.running: set[Backend] = set()
        self._before_stop = before_stop
        self._wanted = False
        self._requested = 0  # number of the newest request
        self._settled = 0  # number of the newest request the runner has acted on
        self._settled_changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._retry_at: dict[Backend, float] = {}
        self._retry_delay: dict[Backend, float] = {}
        self._starting: dict[asyncio.Task[None], Backend] = {}
        self._tasks = BackgroundTasks("lifecycle")
        self._runner: asyncio.Task[None] | None = None

    @property
    def backends(self) -> list[Backend]:
        return self.driver.backends

    @property
    def wanted(self) -> bool:
        return self._wanted

    async def request(self, wanted: bool) -> None:
        """Ask for the backends to run (or not) and wait until that has been acted on.

        A later request may overtake this one; then this returns when the later one has been
        acted on, and the driver's state is the later request's.  Cancelling the wait does not
        cancel the transition.
        """
        self._wanted = wanted
        self._requested += 1
        ticket = self._requested
        if not wanted:
            for task in self._starting:  # a disconnect does not wait for a slow start
                task.cancel()
        self._wake.set()
        if self._runner is None or self._runner.done():
            self._runner = self._tasks.spawn(self._run(), name="driver lifecycle")
        async with self._settled_changed:
            await self._settled_changed.wait_for(lambda: self._settled >= ticket)

    async def close(self) -> None:
        """Stop every backend and the runner (the bridge is shutting down)."""
        try:
            await self.request(False)
        finally:
            await self._tasks.cancel_all()

    # ------------------------------------------------------------------ the runner
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            ticket = self._requested
            self._wake.clear()
            try:
                if self._wanted:
                    await self._start_missing()
                else:
                    await self._stop_all()
            except Exception:  # a bug here must not leave every request waiting forever
                log.exception("driver lifecycle step failed")
            async with self._settled_changed:
                self._settled = ticket
                self._settled_changed.notify_all()
            if self._requested != ticket:
                continue
            delay = None
            if self._wanted and self._retry_at:
                delay = max(0.0, min(self._retry_at.values()) - loop.time())
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _start_missing(self) -> None:
        now = asyncio.get_running_loop().time()
        due = [b for b in self.backends
               if b not in self.running and self._retry_at.get(b, 0.0) <= now]
        for backend in due:
            self._starting[self._tasks.spawn(self._start_one(backend))] = backend
        if self._starting:
            await asyncio.wait(tuple(self._starting))
        for task, backend in list(self._starting.items()):
            del self._starting[task]
            if not task.cancelled() and task.result():
                self.running.add(backend)
                self._retry_at.pop(backend, None)
                self._retry_delay.pop(backend, None)
                continue
            await self._stop_one(backend)  # release what a failed or cancelled start made
            if not task.cancelled():
                delay = self._retry_delay.get(backend, self.retry_seconds / 2) * 2
                self._retry_delay[backend] = min(delay, self.max_retry_seconds)
                self._retry_at[backend] = asyncio.get_running_loop().time() + \
                    self._retry_delay[backend]
                log.info("backend start will be retried", vendor=backend.vendor,
                         seconds=self._retry_delay[backend])
        if self._wanted and not self.driver.connected:
            self.driver.set_connected(True)

    async def _start_one(self, backend: Backend) -> bool:
        """Whether ``backend`` started; a failure is reported, never raised."""
        try:
            async with asyncio.timeout(self.start_timeout):
                await backend.start(self.driver)
        except TimeoutError:
            reason = f"no answer within {self.start_timeout:g} s"
        except BridgeError as exc:
            reason = exc.detail
        except Exception as exc:  # a backend's trouble must not stop the bridge
            log.exception("backend failed to start", vendor=backend.vendor)
            reason = str(exc) or type(exc).__name__
        else:
            return True
        log.error("backend failed to start", vendor=backend.vendor, reason=reason)
        self.driver.publish("driver", "connection error",
                            error={"message": reason, "vendor": backend.vendor})
        return False

    async def _stop_all(self) -> None:
        self._retry_at.clear()
        self._retry_delay.clear()
        if self._before_stop is not None:
            await self._before_stop()
        await asyncio.gather(*(self._stop_one(b) for b in self.backends))
        self.running.clear()
        if self.driver.connected:
            self.driver.set_connected(False)

    async def _stop_one(self, backend: Backend) -> None:
        try:
            async with asyncio.timeout(self.stop_timeout):
                await backend.stop()
        except TimeoutError:
            log.error("backend did not stop in time", vendor=backend.vendor,
                      seconds=self.stop_timeout)
        except Exception:
            log.exception("backend failed to stop", vendor=backend.vendor)
        self.running.discard(backend)
