"""The DoorBird backend: one door station on the LAN, as a eufy doorbell with relay locks."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
import zlib
from collections.abc import Callable
from typing import Any

import structlog

from bridge.backends.doorbird import entities, packets, talkback, udp
from bridge.backends.doorbird.callbacks import HttpCallbacks
from bridge.backends.doorbird.client import (
    AuthFailed,
    Busy,
    DoorBirdClient,
    DoorBirdError,
    Garbled,
    LockedOut,
    NoPermission,
    Refused,
    Unreachable,
)
from bridge.backends.doorbird.live import LiveView
from bridge.backends.doorbird.replay import ReplayGuard
from bridge.backends.doorbird.v1keys import V1Keys
from bridge.driver import Backend, Device, Driver, Entity, Station
from bridge.driver.errors import (
    BridgeError,
    InvalidCommandValue,
    InvalidPropertyValue,
    NotSupported,
    OnlyOneTalkbackAtATime,
    StationConnectionTimeout,
    StationNotConnected,
)
from bridge.driver.properties import RTSP_STREAM, RTSP_STREAM_URL
from bridge.media.hub import Upstream
from bridge.media.talk import Talk
from bridge.settings import DoorBirdSettings
from bridge.tasks import BackgroundTasks

HANDED_SESSION_SECONDS = 480.0
"""How often the session id in a handed-out station URL is renewed (the station keeps one for
ten minutes)."""

log = structlog.get_logger(component="backend.doorbird")

HISTORY_EVENTS = ("doorbell", "motionsensor")
STALE_LOG_SECONDS = 600.0


class DoorBirdBackend(Backend):
    """Discovery, properties, commands and events of one DoorBird."""

    vendor = "doorbird"

    def __init__(
        self,
        settings: DoorBirdSettings,
        *,
        health_seconds: float = 30.0,
        retry_seconds: float = 2.0,
        max_retry_seconds: float = 60.0,
        auth_retry_seconds: float = 300.0,
        light_seconds: float = 180.0,
        replay_window: float = 120.0,
        client: DoorBirdClient | None = None,
    ) -> None:
        self.settings = settings
        self.client = client or DoorBirdClient(settings.host, settings.username,
                                               settings.password.get_secret_value())
        self.health_seconds = health_seconds
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.auth_retry_seconds = auth_retry_seconds
        self.light_seconds = light_seconds
        self.live = LiveView(self.client, settings)
        self.driver: Driver | None = None
        self.station: Station | None = None
        self.bell: Device | None = None
        self.relays: dict[str, str] = {}  # lock serial -> relay name
        self.events_mode: str | None = None
        self._key: bytes | None = None
        self._senders: frozenset[str] = frozenset()  # the station's addresses, once resolved
        self._sends_v2 = False
        self._replays = ReplayGuard(replay_window)
        self._stale_logged_at = float("-inf")
        self._v1_keys = V1Keys(self.client.password,
                               lambda derive: self._tasks.spawn(derive))
        self._history: dict[str, list[float]] = {e: [] for e in HISTORY_EVENTS}
        self._monitor_up = False
        self._monitor_states: dict[str, str] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._tasks = BackgroundTasks()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._check_now = asyncio.Event()
        self._callbacks: HttpCallbacks | None = None
        self._handed_session: str | None = None
        """The session id in the station's own RTSP URL, when the user hands that out."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self, driver: Driver) -> None:
        if not self._begin_start():
            return
        self.driver = driver
        self.client.open()
        first_check = self.health_seconds
        try:
            await self._discover()
        except (AuthFailed, LockedOut) as exc:
            self._report(exc)
            first_check = self.auth_retry_seconds  # never retry into a lock-out
        except DoorBirdError as exc:
            self._report(exc)
            first_check = self.retry_seconds
        self._tasks.spawn(self._supervise(first_check), name="doorbird supervisor")

    async def stop(self) -> None:
        """Idempotent; cancels a start still in progress.  Loops end before the client is
        released, so that nothing of this backend talks to the device afterwards."""
        if not await self._begin_stop():
            return
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self.events_mode = None
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await self._tasks.cancel_all()
        if self._callbacks is not None:
            with contextlib.suppress(DoorBirdError):
                await self._callbacks.unregister()
            self._callbacks = None
        if self._handed_session is not None:
            with contextlib.suppress(DoorBirdError):
                await self.client.invalidate(self._handed_session)
            self._handed_session = None
        await self.client.close()

    @property
    def connected(self) -> bool:
        return self.station is not None and self.station.connected

    def request_counts(self) -> tuple[int, int]:
        return self.client.requests, self.client.errors

    @property
    def push_connected(self) -> bool:
        return self.events_mode in ("udp", "http") or self._monitor_up

    def _report(self, exc: DoorBirdError) -> None:
        log.warning("DoorBird unavailable", host=self.client.address, reason=str(exc))
        if isinstance(exc, AuthFailed | LockedOut) and self.driver is not None:
            self.driver.publish("driver", "connection error",
                                error={"message": str(exc), "vendor": self.vendor})

    # ------------------------------------------------------------------ discovery
    async def _discover(self) -> None:
        assert self.driver is not None
        info = await self.client.info()
        self._key = await self._notification_key()
        if not self._senders:
            self._senders = await self._station_addresses()
        try:
            sip = await self.client.sip_status()
        except (Refused, NoPermission):
            sip = None  # the user lacks the API-Operator permission
        station, bell, locks = entities.build(info, self.settings.name, self.client.host,
                                              self, sip)
        self.station, self.bell = station, bell
        self.live.found(str(info.get("DEVICE-TYPE") or ""), str(info.get("FIRMWARE") or ""))
        if self.settings.hand_out_station_rtsp and self.settings.rtsp_port is not None:
            await self._hand_out_station_rtsp(bell)
        self.relays = {lock.serial: relay for lock, relay in locks}
        self.driver.add_station(station)
        self.driver.add_device(bell)
        for lock, _ in locks:
            self.driver.add_device(lock)
        log.info("DoorBird discovered", serial=station.serial, model=station.properties["model"],
                 relays=list(self.relays.values()))
        await self._start_events()
        self._tasks.spawn(self._refresh_picture())
        self._tasks.spawn(self._scan_history())

    async def _hand_out_station_rtsp(self, bell: Device) -> None:
        """The user's choice: clients get the station's own RTSP URL instead of the bridge's.
        It carries a session id, kept while the backend runs, that opens the door as well as
        the password does, and each player takes one of the station's stream slots."""
        if self._handed_session is None:
            self._handed_session, _ = await self.client.session()
            log.warning("clients are given the DoorBird's own RTSP URL: it carries a session "
                        "id that opens the door as well as the password does",
                        serial=bell.serial)
            self._tasks.spawn(self._renew_handed_session(), name="doorbird rtsp session")
        bell.define(RTSP_STREAM, True)
        bell.define(RTSP_STREAM_URL, self._station_rtsp_url())

    def _station_rtsp_url(self) -> str:
        return (f"rtsp://{self.client.host}:{self.settings.rtsp_port}{self.live.paths[0]}"
                f"?sessionid={self._handed_session}")

    async def _renew_handed_session(self) -> None:
        """The station forgets a session after ten minutes: the URL gets a fresh one before
        (the old one is left to expire, so that a player on it plays on)."""
        wait = HANDED_SESSION_SECONDS
        while True:
            await asyncio.sleep(wait)
            try:
                self._handed_session, _ = await self.client.session()
            except DoorBirdError as exc:
                log.warning("DoorBird RTSP URL not renewed", reason=str(exc))
                wait = self.retry_seconds
                continue
            wait = HANDED_SESSION_SECONDS
            if self.driver is not None and self.bell is not None:
                self.driver.update_property(self.bell, RTSP_STREAM_URL.name,
                                            self._station_rtsp_url())

    async def _notification_key(self) -> bytes:
        """The key of event packets.  The session id that comes with it is invalidated at once:
        nothing of the bridge needs one, and it opens the door as well as the password does."""
        session, key = await self.client.session()
        with contextlib.suppress(DoorBirdError):
            await self.client.invalidate(session)
        return packets.notification_key(key)

    async def _station_addresses(self) -> frozenset[str]:
        """Where the station's event packets come from: the host's addresses, resolved once."""
        host = self.client.host.strip("[]")
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None,
                                                                  type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise Unreachable(f"{self.client.address}: cannot resolve {host}") from exc
        return frozenset(_plain_address(str(info[4][0])) for info in found)

    # ------------------------------------------------------------------ events
    async def _start_events(self) -> None:
        mode = self.settings.events
        if mode == "udp":
            try:
                for port in self.settings.event_ports:
                    self._unsubscribe.append(await udp.subscribe(
                        self.settings.listen_host, port, self._on_datagram))
            except OSError as exc:
                log.warning("UDP event port unavailable, using monitor.cgi instead",
                            error=str(exc))
                for unsubscribe in self._unsubscribe:
                    unsubscribe()
                self._unsubscribe = []
                mode = "monitor"
        if mode == "http" and not await self._start_callbacks():
            mode = "monitor"
        self.events_mode = mode
        if mode == "monitor":
            self._tasks.spawn(self._monitor_loop())

    async def _start_callbacks(self) -> bool:
        """Adds the bridge's favorites and outputs to the station's schedule.  False, with what
        was added removed again, when the station refuses them or answers a schedule of
        another shape: events then come from monitor.cgi, which changes nothing on it."""
        assert self.driver is not None and self.station is not None
        assert self.settings.callback_url is not None
        callbacks = HttpCallbacks(self.client, self.station.serial, self.settings.callback_url)
        unroute = self.driver.add_http_route(  # first: a ring may come while registering
            callbacks.route,
            callbacks.handler(lambda button: self._ring(button, time.time()),
                              lambda: self._motion(time.time())))
        self._unsubscribe.append(unroute)
        self._callbacks = callbacks
        try:
            await callbacks.register()
        except Refused as exc:
            log.warning("DoorBird HTTP callbacks unavailable, using monitor.cgi instead",
                        error=str(exc))
            self._callbacks = None
            self._unsubscribe.remove(unroute)
            unroute()
            with contextlib.suppress(DoorBirdError):
                await callbacks.unregister()
            return False
        return True

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """One packet from the event ports.  Anyone can send them, so the cheap checks come
        first: the sender's address, the packet's shape, then decryption; a version 1 key is
        derived off the event loop, and never for a station known to speak version 2."""
        if not (self.settings.accept_events_from_any
                or _plain_address(addr[0]) in self._senders):
            return
        version = packets.version(data)
        if version == packets.V2 and self._key is not None:
            event = packets.decode(data, self._key)
            if event is not None and event.intercom_id == self.settings.username[:6]:
                self._sends_v2 = True
                self._deliver(event)
        elif (version == packets.V1 and not self._sends_v2
              and (packet := packets.parse_v1(data)) is not None):
            self._v1_keys.open(packet, self._deliver)

    def _deliver(self, event: packets.DoorBirdEvent) -> None:
        """Report an authentic event once: not its repeats, not a replay of an old packet."""
        if event.intercom_id != self.settings.username[:6] or self.driver is None:
            return  # another user's packet, or one whose key was derived after stop
        verdict = self._replays.check(event.event, event.timestamp, event.nonce)
        if verdict == "clock set back":
            log.warning("the DoorBird's clock was set back: its new time is learnt",
                        host=self.client.address)
        if verdict == "stale":
            now = time.monotonic()
            if now - self._stale_logged_at >= STALE_LOG_SECONDS:
                self._stale_logged_at = now
                log.warning("DoorBird event packet from the station's past dropped: a replay, "
                            "or the station's clock was set back",
                            host=self.client.address, kind=event.event)
            return
        if verdict in ("new", "clock set back"):
            if event.is_motion:
                self._motion(float(event.timestamp))
            elif event.doorbell is not None:
                self._ring(event.doorbell, float(event.timestamp))

    async def _monitor_loop(self) -> None:
        delay = self.retry_seconds
        while True:
            try:
                async for line in self.client.monitor():
                    self._monitor_up = True
                    delay = self.retry_seconds
                    name, _, state = line.partition(":")
                    rising = state == "H" and self._monitor_states.get(name) != "H"
                    self._monitor_states[name] = state
                    if rising and name == "doorbell":
                        self._ring(1, time.time())
                    elif rising and name == "motionsensor":
                        self._motion(time.time())
            except (AuthFailed, LockedOut) as exc:
                self._report(exc)
                delay = self.auth_retry_seconds
            except DoorBirdError as exc:
                log.debug("monitor stream ended", reason=str(exc))
                self._check_now.set()
            except Exception:  # a bug or a garbled stream must not end event delivery
                log.exception("monitor stream failed")
            finally:
                self._monitor_up = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_seconds)

    def _ring(self, button: int, moment: float) -> None:
        assert self.driver is not None and self.bell is not None
        self.driver.update_property(self.bell, "doorbellButton", button)
        self.driver.pulse(self.bell.serial, "ring")
        self._history["doorbell"].insert(0, moment)
        self._tasks.spawn(self._refresh_picture())

    def _motion(self, moment: float) -> None:
        assert self.driver is not None and self.bell is not None
        self.driver.pulse(self.bell.serial, "motion")
        self._history["motionsensor"].insert(0, moment)
        self._tasks.spawn(self._refresh_picture())

    async def _refresh_picture(self) -> None:
        if self.driver is None or self.bell is None:
            return
        try:
            jpeg = await self.client.image()
        except DoorBirdError as exc:
            log.debug("no picture", reason=str(exc))
            return
        self.driver.update_property(self.bell, "picture",
                                    {"data": jpeg, "type": entities.PICTURE_TYPE})

    async def _scan_history(self) -> None:
        """Learn when the pictures of the device's history were taken (newest first).

        Done once, at discovery: it reads every picture, and from then on the bridge's own
        events keep the list current."""
        for event in HISTORY_EVENTS:
            found: list[float] = []
            for index in range(1, 51):
                try:
                    _, moment = await self.client.history_image(index, event)
                except Refused:
                    break  # 404: no more pictures
                except DoorBirdError:
                    return
                if moment is not None:
                    found.append(moment)
            self._history[event] = found

    # ------------------------------------------------------------------ availability
    async def _supervise(self, delay: float) -> None:
        """Notice when the device goes away and comes back; never hammer it."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._check_now.wait()
            self._check_now.clear()
            try:
                if self.station is None:
                    await self._discover()
                else:
                    await self.client.info()
                    if not self.station.connected:
                        assert self.driver is not None
                        log.info("DoorBird is back", serial=self.station.serial)
                        self.driver.set_station_connected(self.station.serial, True)
                        await self.refresh()
                delay = self.health_seconds
            except (AuthFailed, LockedOut) as exc:
                self._report(exc)
                delay = self.auth_retry_seconds  # never retry into a lock-out
            except DoorBirdError as exc:
                self._lost(exc)
                delay = min(max(delay, self.retry_seconds) * 2, self.max_retry_seconds) \
                    if delay < self.health_seconds else self.retry_seconds
            except Exception:  # a bug or a garbled answer must not end supervision
                log.exception("DoorBird supervision step failed")
                delay = self.max_retry_seconds

    def _lost(self, exc: DoorBirdError) -> None:
        if self.station is not None and self.station.connected and self.driver is not None:
            log.warning("DoorBird unreachable", serial=self.station.serial, reason=str(exc))
            self.driver.set_station_connected(self.station.serial, False)
        elif self.station is None:
            log.debug("DoorBird still unreachable", host=self.client.address, reason=str(exc))

    async def refresh(self) -> None:
        if self.station is None:
            self._check_now.set()
            return
        try:
            sip = await self.client.sip_status()
        except (Refused, NoPermission):
            sip = None
        except DoorBirdError as exc:
            raise _bridge_error(exc, self) from None
        if sip is not None and self.driver is not None and self.bell is not None:
            for meta, _, status_key in entities.SIP_PROPERTIES:
                if status_key is not None and meta.name in self.bell.properties:
                    self.driver.update_property(self.bell, meta.name,
                                                entities.sip_value(meta, sip.get(status_key)))
        await self._refresh_picture()

    # ------------------------------------------------------------------ writes
    async def set_property(self, entity: Entity, name: str, value: Any) -> None:
        try:
            if name == "light":
                await self._light(value)
            elif name == "locked":
                await self._relay(entity, value)
            else:
                sip = next((param for meta, param, _ in entities.SIP_PROPERTIES
                            if meta.name == name), None)
                if sip is None:
                    raise NotSupported(f"{name} cannot be written on {entity.serial}")
                await self.client.sip_settings(**{sip: int(value)})
        except DoorBirdError as exc:
            if isinstance(exc, Refused):
                raise InvalidPropertyValue(str(exc)) from None
            raise _bridge_error(exc, self) from None

    async def _light(self, on: bool) -> None:
        if not on:
            raise InvalidPropertyValue("DoorBird's light switches itself off")
        await self.client.light_on()
        self._later("light", self.light_seconds, lambda: self._set(self.bell, "light", False))

    async def _relay(self, entity: Entity, locked: bool) -> None:
        relay = self.relays.get(entity.serial)
        if relay is None:
            raise NotSupported(f"{entity.serial} has no relay")
        if locked:
            if entity.properties.get("locked") is False:
                raise InvalidPropertyValue(
                    f"the relay locks again by itself after {self.settings.relay_seconds:g} s")
            return
        await self.client.open_door(relay)
        self._set(entity, "locked", False)
        self._later(entity.serial, self.settings.relay_seconds,
                    lambda: self._set(entity, "locked", True))

    def _set(self, entity: Entity | None, name: str, value: Any) -> None:
        if entity is not None and self.driver is not None:
            self.driver.update_property(entity, name, value)

    def _later(self, key: str, seconds: float, action: Callable[[], None]) -> None:
        if (handle := self._timers.pop(key, None)) is not None:
            handle.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(seconds, action)

    # ------------------------------------------------------------------ commands
    async def run_command(self, entity: Entity, command: str, params: dict[str, Any]) -> Any:
        try:
            if command in ("unlock", "open"):
                await self._relay(entity, False)
                return None
            if command == "reboot":
                await self.client.restart()
                return None
            if command == "download_image":
                await self._download_image(params["file"])
                return None
        except DoorBirdError as exc:
            if isinstance(exc, Refused):
                raise InvalidCommandValue(str(exc)) from None
            raise _bridge_error(exc, self) from None
        raise NotSupported(f"{command} is not supported on {entity.serial}")

    # ------------------------------------------------------------------ live media
    async def stream(self, device: Entity, upstream: Upstream) -> None:
        try:
            await self.live.stream(upstream)
        except NoPermission as exc:
            log.warning("DoorBird refuses live view now: the user has no 'watch always' "
                        "permission and nobody rang in the last 5 minutes",
                        serial=device.serial, reason=str(exc))
            # Not a connection problem: the station can do it, just not for this user at
            # this moment, and retrying at once cannot help; "not supported" is how eufy
            # clients are told a device will not stream.
            raise NotSupported(f"{device.serial} allows no live view now (no 'watch always' "
                               "permission, no ring within 5 minutes)") from None
        except Busy as exc:
            log.warning("DoorBird refuses live view: every stream is taken (509), the "
                        "DoorBird app and other viewers come first", serial=device.serial,
                        reason=str(exc))
            # Transient: the station could not give a connection now, which is what
            # station_connection_timeout says to eufy clients (they try again later).
            raise StationConnectionTimeout(f"{device.serial} has no free stream (509); "
                                           "try again later") from None
        except DoorBirdError as exc:
            raise _bridge_error(exc, self) from None

    async def talk(self, device: Entity, talk: Talk) -> None:
        try:
            await talkback.talk(self.client, talk)
        except Busy as exc:
            log.info("DoorBird talkback refused: someone else talks", serial=device.serial,
                     reason=str(exc))
            raise OnlyOneTalkbackAtATime(f"someone else talks through {device.serial}"
                                         ) from None
        except NoPermission as exc:
            log.warning("DoorBird refuses talkback now: the user has no 'watch always' "
                        "permission and nobody rang in the last 5 minutes",
                        serial=device.serial, reason=str(exc))
            raise NotSupported(f"{device.serial} takes no voice now") from None
        except DoorBirdError as exc:
            raise _bridge_error(exc, self) from None

    async def _download_image(self, file: str) -> None:
        """``live`` (or empty) for the current picture, ``doorbell/3`` or ``motionsensor/1``
        for a history picture; the picture arrives as the ``image downloaded`` event."""
        assert self.driver is not None and self.station is not None
        event, _, index = file.partition("/")
        if file in ("", "live"):
            jpeg = await self.client.image()
        elif event in HISTORY_EVENTS and index.isdigit() and 1 <= int(index) <= 50:
            jpeg, _ = await self.client.history_image(int(index), event)
        else:
            raise InvalidCommandValue("file is live, doorbell/N or motionsensor/N (N 1..50)")
        self.driver.publish("station", "image downloaded", serialNumber=self.station.serial,
                            file=file, image={"data": jpeg, "type": entities.PICTURE_TYPE})

    async def get_events(self, kind: str, start_ms: float, end_ms: float,
                         max_results: int | None) -> list[dict[str, Any]]:
        if kind not in ("history", "video") or self.bell is None:
            return []
        records = []
        for event, moments in self._history.items():
            for index, moment in enumerate(moments[:50], start=1):
                records.append(self._record(event, index, moment))
        return records

    def _record(self, event: str, index: int, moment: float) -> dict[str, Any]:
        assert self.bell is not None
        start = int(moment * 1000)
        path = f"{event}/{index}"
        return {
            "monitor_id": zlib.crc32(f"{self.bell.serial}/{event}/{start}".encode()),
            "station_sn": self.bell.station_serial,
            "device_sn": self.bell.serial,
            "device_name": self.bell.name,
            "device_type": self.bell.type,
            "storage_type": 2,
            "storage_path": path,
            "thumb_path": path,
            "cloud_path": "",
            "start_time": start,
            "end_time": start,
            "create_time": start,
            "event_type": "ring" if event == "doorbell" else "motion",
            "has_human": 0,
            "video_type": 0,
        }


def _plain_address(text: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 as IPv4, no zone, canonical form."""
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _bridge_error(exc: DoorBirdError, backend: DoorBirdBackend) -> BridgeError:
    """What a client is told when the device would not do something."""
    if isinstance(exc, Unreachable):
        backend._lost(exc)
        backend._check_now.set()
        return StationNotConnected(str(exc))
    if isinstance(exc, AuthFailed | LockedOut):
        backend._report(exc)
        return StationNotConnected(str(exc))
    if isinstance(exc, Busy | Garbled):
        return StationConnectionTimeout(str(exc))
    if isinstance(exc, NoPermission):
        return NotSupported(str(exc))
    return InvalidCommandValue(str(exc))
