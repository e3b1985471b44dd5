"""The small interface every vendor backend implements.

A backend owns the conversation with one vendor account or device: it discovers stations and
devices and registers them with the driver, keeps their properties current, turns vendor events
into driver calls (``pulse``, ``update_property``, ``set_station_connected``) and carries out
writes and commands.  Adding a vendor means adding a backend; the server never changes.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.driver.errors import NotSupported

if TYPE_CHECKING:
    from bridge.driver.driver import Driver
    from bridge.driver.model import Entity
    from bridge.media.download import DownloadSink
    from bridge.media.hub import Upstream
    from bridge.media.talk import Talk


class Backend(ABC):
    """One vendor connection.  Only ``start`` and ``stop`` are mandatory."""

    vendor: str = "backend"
    _started: bool = False
    _start_task: asyncio.Task[Any] | None = None

    @classmethod
    def from_settings(cls, entry: Any, data_dir: Path) -> Backend:
        """One backend for one entry of its configuration section (``data_dir`` holds what
        must survive a restart)."""
        return cls(entry)  # type: ignore[call-arg]

    @abstractmethod
    async def start(self, driver: Driver) -> None:
        """Discover stations and devices, register them with ``driver`` and start events.

        Raise on a configuration or credential problem; the driver reports it as a
        ``connection error`` and keeps the rest of the bridge running.
        """

    @abstractmethod
    async def stop(self) -> None:
        """Stop event sources and release every connection (and anything made on the device)."""

    def _begin_start(self) -> bool:
        """For ``start`` to call first: False when already started (a second start is a
        no-op); otherwise remembers the start, so that ``stop`` can cancel it."""
        if self._started:
            return False
        self._started = True
        self._start_task = asyncio.current_task()
        return True

    async def _begin_stop(self) -> bool:
        """For ``stop`` to call first: False when not started (a second stop is a no-op);
        otherwise cancels a start still in progress in another task and waits for it."""
        if not self._started:
            return False
        self._started = False
        start, self._start_task = self._start_task, None
        if start is not None and start is not asyncio.current_task() and not start.done():
            start.cancel()
            await asyncio.wait([start])
        return True

    @property
    def connected(self) -> bool:
        """Whether the vendor API answers."""
        return True

    def request_counts(self) -> tuple[int, int]:
        """Requests made to the vendor so far, and how many of them failed (for metrics)."""
        return 0, 0

    @property
    def push_connected(self) -> bool:
        """Whether the backend's real-time event channel is up."""
        return False

    async def refresh(self) -> None:
        """Re-read stations, devices and properties (``driver.poll_refresh``)."""
        return None

    async def set_property(self, entity: Entity, name: str, value: Any) -> None:
        """Write one already validated property to the vendor."""
        raise NotSupported(f"{name} cannot be written on {entity.serial}")

    async def run_command(self, entity: Entity, command: str, params: dict[str, Any]) -> Any:
        """Carry out an action command listed in ``entity.commands``.

        ``command`` is the catalog name without its prefix (``reboot``, ``unlock``...).  Return
        nothing, or a dict merged into the result.
        """
        raise NotSupported(f"{command} is not supported on {entity.serial}")

    async def stream(self, device: Entity, upstream: Upstream) -> None:
        """Bring the device's live media in: feed ``upstream`` (H.264 access units, AAC
        frames) until cancelled, or return when the device ends the stream.  Raise a
        :class:`BridgeError` when it cannot start (the client is told its code).  Called at
        most once at a time per device: the stream hub shares it between clients."""
        raise NotSupported(f"{device.serial} has no live stream")

    async def talk(self, device: Entity, talk: Talk) -> None:
        """Send a client's voice to the device: call ``talk.started()`` once the device takes
        audio, then read ``talk.audio()`` (AAC-LC ADTS frames) until it ends.  Raise a
        :class:`BridgeError` when the device cannot take audio now."""
        raise NotSupported(f"{device.serial} cannot play a client's voice")

    async def download(self, device: Entity, path: str, cipher_id: int,
                       sink: DownloadSink) -> None:
        """Download one recording of the device: ``path`` is the clip reference its event
        records carry (``cloud_path``), ``cipher_id`` the client's key id (for vendors that
        encrypt recordings).  Call ``sink.started()`` once the clip is found, then
        ``await sink.send(frame)`` for each frame (H.264 access units, AAC frames) in order,
        and return when all were sent.  Raise a :class:`BridgeError` when there is no such
        clip or it cannot be fetched now (the client is told its code).  Called at most once
        at a time per device."""
        raise NotSupported(f"{device.serial} has no recordings to download")

    async def get_events(
        self, kind: str, start_ms: float, end_ms: float, max_results: int | None
    ) -> list[dict[str, Any]]:
        """Event records (``video``, ``alarm`` or ``history``) between two instants."""
        return []

    async def get_voices(self, entity: Entity) -> dict[str, Any]:
        """Quick-response voices of a doorbell."""
        return {}

    async def submit_verify_code(self, code: str) -> bool:
        """Answer a two-factor request this backend raised; False when none is pending."""
        return False

    async def submit_captcha(self, captcha_id: str | None, captcha: str) -> bool:
        """Answer a captcha request this backend raised; False when none is pending."""
        return False
