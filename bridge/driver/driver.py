"""The driver: the registry of stations and devices, the event bus, and the rules that turn
backend facts into eufy events (property changes, ring and motion pulses, connectivity)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import structlog

from bridge.driver import properties
from bridge.driver.backend import Backend
from bridge.driver.errors import (
    BridgeError,
    DeviceNotFound,
    InvalidProperty,
    NotSupported,
    PropertyNotSupported,
    PropertyReadonly,
    StationNotConnected,
    StationNotFound,
)
from bridge.driver.events import DriverEvent, EventBus
from bridge.driver.lifecycle import Lifecycle
from bridge.driver.model import Device, Entity, PropertyMetadata, Station
from bridge.media.download import Deliver, DownloadHub
from bridge.media.hub import StreamHub, Subscriber
from bridge.media.talk import Ended, TalkHub
from bridge.tasks import BackgroundTasks, foreign_cancellation

if TYPE_CHECKING:
    from bridge.media.relay import RtspRelay

log = structlog.get_logger(component="bridge.driver")

PulseKind = Literal["ring", "motion", "person"]
HttpReply = tuple[int, str, bytes]
HttpHandler = Callable[[str, dict[str, str]], HttpReply]
"""Answers a plain HTTP GET on the bridge's port: (path, query) to (status, content type,
body)."""

# A pulse is an event with state true, then false after the event duration, mirrored by a
# boolean property (PROTOCOL.md §1).
_PULSES: dict[str, tuple[str, str]] = {
    "ring": ("rings", "ringing"),
    "motion": ("motion detected", "motionDetected"),
    "person": ("person detected", "personDetected"),
}
PULSE_EVENTS = frozenset(event for event, _ in _PULSES.values())

_KNOWN_PROPERTIES = properties.OTHER_EUFY_NAMES | {
    meta.name for meta in vars(properties).values() if isinstance(meta, PropertyMetadata)
}


class Driver:
    """Holds the eufy-shaped state and publishes every change once on :attr:`bus`."""

    def __init__(self, backends: Iterable[Backend] = (), *, event_seconds: float = 5.0,
                 backend_timeout: float = 10.0, stop_timeout: float = 3.0) -> None:
        self.backends: list[Backend] = list(backends)
        self.event_seconds = event_seconds
        self.backend_timeout = backend_timeout
        self.bus = EventBus()
        self.stations: dict[str, Station] = {}
        self.devices: dict[str, Device] = {}
        self.connected = False
        self._pulses: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._known_properties: set[str] = set(_KNOWN_PROPERTIES)
        self.http_routes: dict[str, HttpHandler] = {}
        self.rtsp: RtspRelay | None = None
        """The bridge's RTSP server when it serves cameras (set by the app before start):
        every camera added gets its URL (see :meth:`add_device`)."""
        self._tasks = BackgroundTasks("driver")
        self._refreshing: dict[Backend, asyncio.Task[Any]] = {}
        self._commands = BackgroundTasks("driver commands")
        self._in_flight: dict[tuple[str, ...], asyncio.Task[Any]] = {}
        # a backend's start must end (or fail) before a command waiting on it times out
        self.streams = StreamHub(start_timeout=backend_timeout)
        self.talks = TalkHub(start_timeout=backend_timeout)
        self.downloads = DownloadHub(start_timeout=backend_timeout)
        self.lifecycle = Lifecycle(self, start_timeout=backend_timeout,
                                   stop_timeout=stop_timeout,
                                   before_stop=self._before_backends_stop)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start every backend; one failing backend is reported (and retried), not fatal."""
        await self.lifecycle.request(True)

    async def stop(self) -> None:
        """Stop every backend and the lifecycle runner (the bridge is shutting down)."""
        try:
            await self.lifecycle.close()
        finally:
            await self._commands.cancel_all()

    async def connect(self) -> bool:
        """``driver.connect``: the backends run when this answers, unless a later
        ``driver.disconnect`` overtook it; the answer is the state reached."""
        await self.lifecycle.request(True)
        return self.connected

    async def disconnect(self) -> None:
        """``driver.disconnect``: stop every backend; the state stays readable."""
        await self.lifecycle.request(False)

    def set_connected(self, connected: bool) -> None:
        """Called by the lifecycle owner only, once per transition."""
        self.connected = connected
        if not connected:
            for handle in self._pulses.values():
                handle.cancel()
            self._pulses.clear()
        self.publish("driver", "connected" if connected else "disconnected")

    async def poll_refresh(self) -> None:
        """Refresh every running backend; answers at once when disconnected.

        One refresh runs per backend at a time: a caller arriving while one is in flight shares
        its outcome instead of multiplying the vendor's traffic (a DoorBird locks users out
        when flooded).  A backend that fails or is slow is logged, not fatal (its stations
        report their own connectivity).
        """
        if not self.connected:
            return
        waiting = []
        for backend in self.lifecycle.running:
            task = self._refreshing.get(backend)
            if task is None:
                task = self._tasks.spawn(self._refresh(backend), name=f"refresh {backend.vendor}")
                self._refreshing[backend] = task
            waiting.append(task)
        if waiting:
            await asyncio.wait(waiting)  # cancelling this wait leaves the refreshes running

    async def _refresh(self, backend: Backend) -> None:
        try:
            await self._call_backend(backend, "refresh", backend.refresh)
        finally:
            self._refreshing.pop(backend, None)

    async def _before_backends_stop(self) -> None:
        """Before backends stop: nothing of theirs may run while they release their clients
        (refreshes, live streams)."""
        await self.streams.stop_all()
        await self.talks.stop_all()
        await self.downloads.stop_all()
        await self._tasks.cancel_all()

    async def watch(self, device: Device, subscriber: Subscriber) -> None:
        """Subscribe to the device's live stream, starting it when nobody watches yet;
        returns once media flows."""
        backend = device.backend
        if "start_livestream" not in device.commands or backend is None:
            raise NotSupported(f"{device.serial} has no live stream")
        if not self.connected:
            raise StationNotConnected("the driver is disconnected")
        await self.streams.join(device.serial, subscriber,
                                lambda upstream: backend.stream(device, upstream))

    async def start_talk(self, device: Device, owner: object, ended: Ended) -> None:
        """Start ``owner``'s talk through the device; returns once the device takes audio."""
        backend = device.backend
        if "start_talkback" not in device.commands or backend is None:
            raise NotSupported(f"{device.serial} cannot play a client's voice")
        if not self.connected:
            raise StationNotConnected("the driver is disconnected")
        await self.talks.start(device.serial, owner, lambda talk: backend.talk(device, talk),
                               ended)

    async def start_download(self, device: Device, owner: object, path: str,
                             cipher_id: int | None, deliver: Deliver,
                             finished: Callable[[], None]) -> None:
        """Start ``owner``'s download of the recording at ``path``; returns once it flows."""
        backend = device.backend
        if "start_download" not in device.commands or backend is None:
            raise NotSupported(f"{device.serial} keeps no recordings")
        if not self.connected:
            raise StationNotConnected("the driver is disconnected")
        await self.downloads.start(
            device.serial, owner,
            lambda download: backend.download(device, path, cipher_id, download),
            deliver, finished)

    async def _call_backend(self, backend: Backend, what: str,
                            call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()``, bounded by ``backend_timeout``; None (logged) when it fails."""
        try:
            async with asyncio.timeout(self.backend_timeout):
                return await call()
        except TimeoutError:
            log.warning("backend too slow", vendor=backend.vendor, call=what,
                        seconds=self.backend_timeout)
        except BridgeError as exc:
            log.info("backend call failed", vendor=backend.vendor, call=what,
                     reason=exc.detail)
        except asyncio.CancelledError:
            if not foreign_cancellation():
                raise
            log.info("backend call failed", vendor=backend.vendor, call=what,
                     reason="its connection was closed")
        except Exception:
            log.exception("backend call failed", vendor=backend.vendor, call=what)
        return None

    async def _each_backend(self, what: str, call: Callable[[Backend], Any]) -> list[Any]:
        """``call`` on every backend at once, each bounded by ``backend_timeout``; the
        results of those that answered (None for the others)."""
        return list(await asyncio.gather(
            *(self._call_backend(b, what, lambda b=b: call(b)) for b in self.backends)))

    @property
    def push_connected(self) -> bool:
        return bool(self.backends) and all(b.push_connected for b in self.backends)

    # ------------------------------------------------------------------ lookups
    def station(self, serial: Any) -> Station:
        station = self.stations.get(serial) if isinstance(serial, str) else None
        if station is None:
            raise StationNotFound(f"no station {serial!r}")
        return station

    def device(self, serial: Any) -> Device:
        device = self.devices.get(serial) if isinstance(serial, str) else None
        if device is None:
            raise DeviceNotFound(f"no device {serial!r}")
        return device

    # ------------------------------------------------------------------ backend-facing
    def publish(self, source: str, event: str, **data: Any) -> None:
        self.bus.publish(DriverEvent(source, event, data))

    def add_http_route(self, prefix: str, handler: HttpHandler) -> Callable[[], None]:
        """Let a backend answer plain HTTP GETs under ``prefix`` on the bridge's port (device
        callbacks such as DoorBird's HTTP favorites)."""
        self.http_routes[prefix] = handler
        return lambda: self.http_routes.pop(prefix, None) and None

    def add_station(self, station: Station) -> None:
        self._known_properties.update(station.metadata)
        self.stations[station.serial] = station
        self.publish("station", "station added", station=station)

    def add_device(self, device: Device) -> None:
        if self.rtsp is not None:  # the same for every vendor's cameras
            self.rtsp.decorate(device)
        self._known_properties.update(device.metadata)
        self.devices[device.serial] = device
        self.publish("device", "device added", device=device)

    def remove_device(self, serial: str) -> None:
        device = self.devices.pop(serial, None)
        if device is not None:
            self._cancel_pulses(serial)
            self.publish("device", "device removed", device=device)

    def remove_station(self, serial: str) -> None:
        station = self.stations.pop(serial, None)
        if station is not None:
            self.publish("station", "station removed", station=station)

    def update_property(self, entity: Entity, name: str, value: Any) -> None:
        """Record a property value; publish ``property changed`` only when it changed."""
        if name in entity.properties and entity.properties[name] == value:
            return
        entity.properties[name] = value
        self.publish(entity.kind, "property changed", serialNumber=entity.serial, name=name,
                     value=value, timestamp=_now_ms())
        if name == "locked" and isinstance(entity, Device):
            self.publish("device", "locked", serialNumber=entity.serial, state=value)

    def set_station_connected(self, serial: str, connected: bool) -> None:
        station = self.stations.get(serial)
        if station is None or station.connected == connected:
            return
        station.connected = connected
        self.publish("station", "connected" if connected else "disconnected", serialNumber=serial)

    def pulse(self, serial: str, kind: PulseKind, *, person: str = "",
              seconds: float | None = None) -> None:
        """Report a ring, motion or person: ``state:true`` now, ``false`` after ``seconds``
        (the bridge's event duration unless a backend has its own).

        A repeat while the pulse is on is reported again and extends it.
        """
        device = self.devices.get(serial)
        if device is None:
            log.warning("event for an unknown device", serial=serial, kind=kind)
            return
        event, prop = _PULSES[kind]
        log.info("device event", serial=serial, kind=kind)  # what a user checks first
        extra = {"person": person} if kind == "person" else {}
        key = (serial, kind)
        if (handle := self._pulses.pop(key, None)) is not None:
            handle.cancel()
        self.publish("device", event, serialNumber=serial, state=True, **extra)
        if prop in device.properties:
            self.update_property(device, prop, True)
        if kind == "person" and "personName" in device.properties:
            self.update_property(device, "personName", person)
        self._pulses[key] = asyncio.get_running_loop().call_later(
            self.event_seconds if seconds is None else seconds, self._end_pulse, serial, kind
        )

    def _end_pulse(self, serial: str, kind: str) -> None:
        self._pulses.pop((serial, kind), None)
        device = self.devices.get(serial)
        if device is None:
            return
        event, prop = _PULSES[kind]
        extra = {"person": ""} if kind == "person" else {}
        self.publish("device", event, serialNumber=serial, state=False, **extra)
        if prop in device.properties:
            self.update_property(device, prop, False)

    def _cancel_pulses(self, serial: str) -> None:
        for key in [k for k in self._pulses if k[0] == serial]:
            self._pulses.pop(key).cancel()

    # ------------------------------------------------------------------ client-facing
    async def write_property(self, entity: Entity, name: str, value: Any) -> None:
        """Validate and write one property; the change comes back as ``property changed``."""
        meta = entity.metadata.get(name)
        if meta is None:
            if name in self._known_properties:
                raise PropertyNotSupported(f"{entity.serial} has no property {name}")
            raise InvalidProperty(f"there is no property {name}")
        if not meta.writeable:
            raise PropertyReadonly(f"{name} is read-only")
        value = meta.check(value)
        if entity.backend is None:
            raise NotSupported(f"{name} cannot be written on {entity.serial}")
        backend = entity.backend
        await self._once(("write", entity.serial, name, repr(value)),
                         lambda: backend.set_property(entity, name, value))
        if meta.readable:  # a write-only value (a passcode) is never kept or echoed
            self.update_property(entity, name, value)

    async def run_command(self, entity: Entity, command: str, params: dict[str, Any]) -> Any:
        """Carry out an action the entity lists; anything else is ``device_not_supported``."""
        if command not in entity.commands or entity.backend is None:
            raise NotSupported(f"{entity.serial} does not support {command}")
        backend = entity.backend
        key = ("run", entity.serial, command, repr(sorted(params.items())))
        return await self._once(key, lambda: backend.run_command(entity, command, params))

    async def _once(self, key: tuple[str, ...], call: Callable[[], Awaitable[Any]]) -> Any:
        """Run a vendor call, or join the identical one already in flight.

        A flood of the same command (a client retrying an unlock, a page clicked twenty times)
        then costs the device one request, not twenty: DoorBird stations lock users out when
        flooded.  Every caller gets the same outcome; one caller giving up (its command timed
        out) does not cancel the call for the others.
        """
        task = self._in_flight.get(key)
        if task is None:
            task = self._commands.spawn(call(), name=f"{key[0]} {key[2]} on {key[1]}",
                                        awaited=True)
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        return await asyncio.shield(task)

    async def get_voices(self, device: Device) -> dict[str, Any]:
        if device.backend is None:
            return {}
        return await device.backend.get_voices(device)

    async def get_events(
        self,
        kind: str,
        start_ms: float,
        end_ms: float,
        filter_: dict[str, Any] | None,
        max_results: int | None,
    ) -> list[dict[str, Any]]:
        """Merge the event records of every backend: in range, filtered, newest first."""
        batches = [batch or [] for batch in await self._each_backend(
            f"get_{kind}_events", lambda b: b.get_events(kind, start_ms, end_ms, max_results))]
        wanted_device = (filter_ or {}).get("deviceSN")
        wanted_station = (filter_ or {}).get("stationSN")
        records = [
            r
            for batch in batches
            for r in batch
            if start_ms <= r.get("start_time", 0) <= end_ms
            and (not wanted_device or r.get("device_sn") == wanted_device)
            and (not wanted_station or r.get("station_sn") == wanted_station)
        ]
        records.sort(key=lambda r: r.get("start_time", 0), reverse=True)
        return records if max_results is None else records[:max_results]

    async def submit_verify_code(self, code: str) -> bool:
        return any(await self._each_backend("verify_code",
                                            lambda b: b.submit_verify_code(code)))

    async def submit_captcha(self, captcha_id: str | None, captcha: str) -> bool:
        return any(await self._each_backend("captcha",
                                            lambda b: b.submit_captcha(captcha_id, captcha)))


def _now_ms() -> int:
    return int(time.time() * 1000)
