"""The SkyBell backend: every doorbell of one SkyBell account, through the cloud API, with
rings and motion from three sources (LAN packets, webhooks, activity polling)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import time
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from bridge.backends.skybell import cloud_settings, entities, lan
from bridge.backends.skybell.client import (
    AuthFailed,
    CloudRefused,
    CloudUnavailable,
    DeviceOffline,
    SkyBellClient,
    SkyBellError,
)
from bridge.backends.skybell.clips import clip_path, download_clip
from bridge.backends.skybell.events import MEMORY_MS, EventLedger
from bridge.backends.skybell.live import LiveViews
from bridge.driver import Backend, Device, Driver, Entity, Station
from bridge.driver.errors import (
    BridgeError,
    InvalidCommandValue,
    InvalidPropertyValue,
    NotSupported,
    StationConnectionTimeout,
    StationNotConnected,
)
from bridge.media.download import Download
from bridge.media.hub import Upstream
from bridge.media.talk import Talk
from bridge.settings import SkyBellSettings
from bridge.storage import StateStore
from bridge.tasks import BackgroundTasks
from bridge.webapp import serve

log = structlog.get_logger(component="backend.skybell")

POLL_OVERLAP_MS = 5 * 60_000
CLOCK_SLACK_MS = 60_000
"""How far the cursor may be ahead of the cloud's clock (read from whole-second ``Date``
headers) before the clock counts as set back."""
AUTH_RETRY_SECONDS = 300.0
WEBHOOK_EVENTS = ["doorbell", "motion", "availability", "telemetry"]
TOKEN_HEADER = "x-eufy-bridge-token"
assert POLL_OVERLAP_MS < MEMORY_MS


class SkyBellBackend(Backend):
    """One SkyBell account."""

    vendor = "skybell"

    def __init__(self, settings: SkyBellSettings, *, data_dir: Any = None,
                 client: SkyBellClient | None = None) -> None:
        self.settings = settings
        identity = settings.api_key.get_secret_value() if settings.api_key else settings.email
        self._state_name = "skybell-" + hashlib.sha256(
            f"{settings.base_url}|{identity}".encode()).hexdigest()[:16]
        self.store = StateStore(data_dir) if data_dir is not None else None
        self.client = client or SkyBellClient(
            settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            email=settings.email,
            password=settings.password.get_secret_value() if settings.password else None,
            store=self.store, state_name=self._state_name)
        self.driver: Driver | None = None
        self.stations: dict[str, Station] = {}  # device_id -> station
        self.bells: dict[str, Device] = {}  # device_id -> doorbell
        self.ip_addresses: dict[str, str] = {}  # LAN address -> device_id
        self.cloud_settings: dict[str, dict[str, Any]] = {}  # device_id -> settings object
        self.led_colors: dict[str, str] = {}  # device_id -> the LED's last colour
        self.ledger = EventLedger()
        self._tasks = BackgroundTasks()
        self._webhook_runner: web.AppRunner | None = None
        self._webhook_token = secrets.token_urlsafe(24)
        self._triggers: dict[str, str] = {}  # trigger_id -> device_id
        self._udp: asyncio.DatagramTransport | None = None
        self._cloud_ok = False
        self._auth_failed = False
        self.live = LiveViews(self.client, stall_seconds=settings.live_stall_seconds,
                              map_error=lambda exc: self._error(exc, None))

    @classmethod
    def from_settings(cls, entry: SkyBellSettings, data_dir: Any) -> SkyBellBackend:
        return cls(entry, data_dir=data_dir)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, driver: Driver) -> None:
        if not self._begin_start():
            return
        self.driver = driver
        self.client.open()
        state = self.store.load(self._state_name) if self.store else {}
        self.ledger = EventLedger.from_json(state.get("events", {}))
        colors = state.get("led_colors")
        self.led_colors = {str(d): c for d, c in colors.items() if isinstance(c, str)
                           and cloud_settings.LED_COLOR.match(c)} \
            if isinstance(colors, dict) else {}
        self.client.load_tokens()
        try:
            await self._discover()
            self._cloud_ok = True
        except SkyBellError as exc:
            self._report(exc)
        if self.ledger.cursor_ms is None:  # nothing before the first start, by the cloud's clock
            self.ledger.cursor_ms = self.client.cloud_now_ms()
        await self._start_lan()
        if self.settings.webhook_url:
            try:
                await self._start_webhooks(state.get("triggers", {}))
                await self._ensure_triggers()
            except (SkyBellError, OSError) as exc:
                log.warning("webhooks unavailable", error=str(exc))
        self._tasks.spawn(self._poll_loop(), name="skybell poll")
        self._save()

    async def stop(self) -> None:
        """Idempotent; cancels a start still in progress.  Loops end before the webhooks,
        the LAN port and the client are released."""
        if not await self._begin_stop():
            return
        await self._tasks.cancel_all()
        await self.live.stop()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        await self._stop_webhooks()
        self._save()
        if self.store is not None:
            await self.store.flush()
        await self.client.close()

    @property
    def connected(self) -> bool:
        return self._cloud_ok

    def request_counts(self) -> tuple[int, int]:
        return self.client.requests, self.client.errors

    @property
    def push_connected(self) -> bool:
        return self._udp is not None or self._webhook_runner is not None

    def _save(self) -> None:
        if self.store is None:
            return
        state = self.store.load(self._state_name)
        state["events"] = self.ledger.to_json()
        state["triggers"] = self._triggers
        state["led_colors"] = self.led_colors
        self.store.save(self._state_name, state)

    def _report(self, exc: SkyBellError) -> None:
        log.warning("SkyBell cloud trouble", reason=str(exc))
        if isinstance(exc, AuthFailed) and self.driver is not None and not self._auth_failed:
            self._auth_failed = True  # reported once, until the account works again
            self.driver.publish("driver", "connection error",
                                error={"message": str(exc), "vendor": self.vendor})

    # ------------------------------------------------------------------ discovery
    async def _discover(self) -> None:
        assert self.driver is not None
        listed = {d["device_id"]: d for d in await self.client.devices()}
        for device_id in [d for d in self.bells if d not in listed]:
            bell = self.bells.pop(device_id)
            self.stations.pop(device_id, None)
            self.driver.remove_device(bell.serial)
            self.driver.remove_station(bell.serial)
        for device_id in listed:
            if device_id in self.bells:
                self._update(device_id, await self.client.device(device_id))
                continue
            detail = await self.client.device(device_id)
            settings = entities.settings_of(detail)
            self._remember_settings(device_id, settings)
            station, bell = entities.build(detail, self, self._last_color(device_id))
            self.stations[device_id], self.bells[device_id] = station, bell
            self._remember_address(device_id, detail.get("telemetry") or {})
            self.driver.add_station(station)
            self.driver.add_device(bell)
            log.info("SkyBell discovered", serial=bell.serial, name=bell.name)
            self._tasks.spawn(self._refresh_picture(device_id))

    def _update(self, device_id: str, detail: dict[str, Any]) -> None:
        assert self.driver is not None
        bell = self.bells[device_id]
        self._apply_settings(device_id, entities.settings_of(detail))
        telemetry = detail.get("telemetry") or {}
        entities.apply_telemetry(bell, telemetry, self.driver.update_property,
                                 station=self.stations.get(device_id))
        self._remember_address(device_id, telemetry)
        self.driver.set_station_connected(bell.serial, entities.online(detail))

    def _remember_settings(self, device_id: str, settings: dict[str, Any]) -> None:
        """Keep the settings object (nested writes start from it) and the LED's colour while
        it is on, so turning it on again restores it, across restarts too."""
        self.cloud_settings[device_id] = settings
        color = settings.get("led_color")
        if isinstance(color, str) and cloud_settings.LED_COLOR.match(color) \
                and self.led_colors.get(device_id) != color:
            self.led_colors[device_id] = color
            self._save()

    def _last_color(self, device_id: str) -> str:
        return self.led_colors.get(device_id, cloud_settings.DEFAULT_LED_COLOR)

    def _apply_settings(self, device_id: str, settings: dict[str, Any]) -> None:
        """Show a settings object the cloud sent: changed values as ``property changed``; a
        setting it did not hold before (new firmware) becomes a property."""
        assert self.driver is not None
        self._remember_settings(device_id, settings)
        bell = self.bells[device_id]
        for name, (meta, value) in cloud_settings.read(settings,
                                                       self._last_color(device_id)).items():
            if name in bell.metadata:
                self.driver.update_property(bell, name, value)
            else:
                bell.define(meta, value)

    def _remember_address(self, device_id: str, telemetry: dict[str, Any]) -> None:
        address = telemetry.get("ip_address")
        if address:
            self.ip_addresses = {a: d for a, d in self.ip_addresses.items() if d != device_id}
            self.ip_addresses[str(address)] = device_id

    async def refresh(self) -> None:
        try:
            await self._discover()
            await self._ensure_triggers()
            self._cloud_ok = True
        except SkyBellError as exc:
            self._report(exc)
            raise self._error(exc, None) from None

    async def _refresh_picture(self, device_id: str, preview: str | None = None) -> None:
        bell = self.bells.get(device_id)
        if bell is None or self.driver is None:
            return
        try:
            preview = preview or await self.client.snapshot(device_id)
            jpeg = base64.b64decode(preview)
        except (SkyBellError, ValueError) as exc:
            log.debug("no snapshot", device=bell.serial, reason=str(exc))
            return
        self.driver.update_property(bell, "picture",
                                    {"data": jpeg, "type": entities.PICTURE_TYPE})

    # ------------------------------------------------------------------ events
    def _event(self, device_id: str, kind: str, *, person: bool = False,
               preview: str | None = None) -> None:
        """Report a ring or a motion that the ledger let through."""
        bell = self.bells.get(device_id)
        if bell is None or self.driver is None:
            return
        seconds = self.settings.event_seconds
        if kind == "doorbell":
            self.driver.pulse(bell.serial, "ring", seconds=seconds)
        elif kind == "motion":
            self.driver.pulse(bell.serial, "motion", seconds=seconds)
        if person:
            self.driver.pulse(bell.serial, "person", seconds=seconds)
        self._tasks.spawn(self._refresh_picture(device_id, preview))

    async def _start_lan(self) -> None:
        if not self.settings.udp_port:
            return
        backend = self

        class Receiver:
            def connection_made(self, transport: Any) -> None:
                pass

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                backend._lan_packet(data, addr[0])

            def error_received(self, exc: Exception) -> None:
                pass

            def connection_lost(self, exc: Exception | None) -> None:
                pass

        loop = asyncio.get_running_loop()
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                Receiver, local_addr=(self.settings.udp_listen, self.settings.udp_port),
                allow_broadcast=True)
        except OSError as exc:
            log.warning("SkyBell LAN port unavailable; cloud events only",
                        port=self.settings.udp_port, error=str(exc))

    def _lan_packet(self, data: bytes, address: str) -> None:
        kind = lan.kind(data)
        device_id = self.ip_addresses.get(address)
        if kind is None or device_id is None:
            return
        if self.ledger.lan(device_id, kind):
            self._event(device_id, kind)

    def _cloud_event(self, device_id: str, kind: str, activity_id: str, time_ms: int,
                     *, person: bool = False, preview: str | None = None) -> None:
        if kind not in ("doorbell", "motion"):
            return
        local_ms = time_ms - self.client.clock_offset_ms  # the cloud's clock may be off
        if self.ledger.cloud(device_id, kind, activity_id, local_ms):
            self._event(device_id, kind, person=person, preview=preview)
        elif person:  # a LAN motion came first; the cloud adds that it was a person
            self._event(device_id, "person", person=True, preview=preview)

    async def _poll_loop(self) -> None:
        delay = AUTH_RETRY_SECONDS if self._auth_failed else self.settings.poll_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self._check_devices()
                await self.poll()
                self._auth_failed = False
                delay = self.settings.poll_interval
            except AuthFailed as exc:
                # never keep trying refused credentials at the polling pace
                self._cloud_ok = False
                self._report(exc)
                delay = min(max(delay * 2, AUTH_RETRY_SECONDS), 3600.0)
            except SkyBellError as exc:
                self._cloud_ok = False
                self._report(exc)
                delay = self.settings.poll_interval
            except Exception:  # a bug or a garbled answer must not end event polling
                log.exception("SkyBell poll failed")
                delay = max(self.settings.poll_interval, 60.0)

    async def _check_devices(self) -> None:
        """Availability from the device list; a full read for new or removed doorbells."""
        assert self.driver is not None
        listed = {d["device_id"]: d for d in await self.client.devices()}
        if set(listed) != set(self.bells):
            await self._discover()
            await self._ensure_triggers()
            return
        for device_id, summary in listed.items():
            self.driver.set_station_connected(self.bells[device_id].serial,
                                              entities.online(summary))

    async def poll(self) -> None:
        """Read activities since the cursor (with an overlap) and report the new ones.

        The cursor is the cloud's time and never runs ahead of the cloud's own clock: when
        that clock is set back, reading resumes from its new now (the ids keep activities
        read before from coming back), rather than from a moment it will not reach again
        for as long as it was set back."""
        cursor = self.ledger.cursor_ms
        cloud_now = self.client.cloud_now_ms()
        if cursor is None or cursor > cloud_now + CLOCK_SLACK_MS:
            if cursor is not None:
                log.warning("the SkyBell cloud's clock went back; polling from its new now",
                            seconds=round((cursor - cloud_now) / 1000))
            cursor = cloud_now
        rows = await self.client.activities(start=cursor - POLL_OVERLAP_MS, nopreviews=1)
        self._cloud_ok = True
        newest = cursor
        for row in sorted(rows, key=lambda r: r.get("event_time", 0)):
            device_id, activity_id = row.get("device_id"), row.get("activity_id")
            if not device_id or not activity_id:
                continue
            time_ms = int(row.get("event_time", 0))
            person = "person" in (row.get("edge_tags") or [])
            self._cloud_event(device_id, str(row.get("event_type")), str(activity_id),
                              time_ms, person=person)
            newest = max(newest, time_ms)
        self.ledger.cursor_ms = min(newest, self.client.cloud_now_ms() + CLOCK_SLACK_MS)
        self._save()

    # ------------------------------------------------------------------ webhooks
    async def _start_webhooks(self, stale: dict[str, str]) -> None:
        assert self.settings.webhook_url is not None
        listen = self.settings.webhook_listen or "127.0.0.1:0"
        host, _, port = listen.rpartition(":")
        path = urlsplit(self.settings.webhook_url).path or "/"
        app = web.Application()
        app.router.add_post(path, self._webhook)
        self._webhook_runner, _ = await serve(app, host or "127.0.0.1", int(port or 0))
        for trigger_id, device_id in stale.items():  # left by a run that did not stop cleanly
            with contextlib.suppress(SkyBellError):
                await self.client.delete_trigger(device_id, trigger_id)

    async def _ensure_triggers(self) -> None:
        """A webhook trigger for every doorbell that has none (new ones included)."""
        if self._webhook_runner is None or self.settings.webhook_url is None:
            return
        covered = set(self._triggers.values())
        for device_id in [d for d in self.bells if d not in covered]:
            created = await self.client.create_trigger(device_id, {
                "type": "webhook", "url": self.settings.webhook_url, "method": "post",
                "header_name": TOKEN_HEADER, "header_value": self._webhook_token,
                "events": WEBHOOK_EVENTS})
            self._triggers[created["trigger_id"]] = device_id
            log.info("SkyBell webhook registered", serial=self.bells[device_id].serial)
        self._save()

    async def _stop_webhooks(self) -> None:
        for trigger_id, device_id in list(self._triggers.items()):
            try:
                await self.client.delete_trigger(device_id, trigger_id)
                del self._triggers[trigger_id]
            except SkyBellError as exc:
                log.info("trigger not removed", reason=str(exc))
        if self._webhook_runner is not None:
            await self._webhook_runner.cleanup()
            self._webhook_runner = None

    async def _webhook(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, ""),
                                      self._webhook_token):
            return web.Response(status=403, text="forbidden")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="JSON expected")
        self.webhook(body)
        return web.Response(text="ok")

    def webhook(self, body: dict[str, Any]) -> None:
        """One webhook call of the cloud."""
        event, device_id = body.get("event"), body.get("device_id")
        if device_id not in self.bells or self.driver is None:
            return
        bell = self.bells[device_id]
        detail = body.get("detail") or {}
        if event in ("doorbell", "motion") and body.get("activity_id"):
            self._cloud_event(device_id, str(event), str(body["activity_id"]),
                              _millis(body.get("date_time")), preview=body.get("preview"))
        elif event == "availability":
            self.driver.set_station_connected(bell.serial, detail.get("state") == "connected")
        elif event == "telemetry":
            entities.apply_telemetry(bell, detail, self.driver.update_property,
                                     station=self.stations.get(device_id))
            self._remember_address(device_id, detail)

    # ------------------------------------------------------------------ writes
    async def set_property(self, entity: Entity, name: str, value: Any) -> None:
        """Send only the changed setting; the cloud's answer (the whole settings object) then
        updates every property it touches (the LED's colour and on/off together)."""
        device_id = self._device_id(entity)
        if name not in cloud_settings.BY_NAME:
            raise NotSupported(f"{name} cannot be written on {entity.serial}")
        if name == "ledColor" and not cloud_settings.LED_COLOR.match(value):
            raise InvalidPropertyValue("ledColor is a #RRGGBB colour")
        current = self.cloud_settings.get(device_id, {})
        update = cloud_settings.changes(name, value, current, self._last_color(device_id))
        try:
            answer = await self.client.update_settings(device_id, update)
        except SkyBellError as exc:
            raise self._error(exc, entity, writing=True) from None
        if device_id in self.bells and self.driver is not None:
            whole = isinstance(answer, dict) and update.keys() <= answer.keys()
            self._apply_settings(device_id, answer if whole
                                 else cloud_settings.merged(current, update))

    # ------------------------------------------------------------------ commands
    async def run_command(self, entity: Entity, command: str, params: dict[str, Any]) -> Any:
        device_id = self._device_id(entity)
        try:
            if command == "reboot":
                await self.client.reboot(device_id)
            elif command == "chime":
                index = params.get("ringtone")
                if index is None:  # the current tone, or 1.wav for the doorbell's own
                    current = self.bells[device_id].properties.get("chimeTone")
                    index = current if isinstance(current, int) and current >= 0 else 1
                if not 0 <= index < len(cloud_settings.CHIME_FILES):
                    raise InvalidCommandValue(
                        f"ringtone is 0..{len(cloud_settings.CHIME_FILES) - 1}")
                await self.client.test_tone(device_id, cloud_settings.CHIME_FILES[index])
            elif command.startswith("database_"):
                await self._database(entity, command, params)
            else:
                raise NotSupported(f"{command} is not supported on {entity.serial}")
        except SkyBellError as exc:
            raise self._error(exc, entity) from None
        return None

    async def _database(self, entity: Entity, command: str, params: dict[str, Any]) -> None:
        """The eufy station database commands, answered from the account's activities."""
        assert self.driver is not None
        device_id = self._device_id(entity)
        serial = entity.serial
        if command == "database_delete":
            wanted = set(params["ids"])
            rows = await self.client.activities(device_id=device_id, nopreviews=1)
            failed = set(wanted)
            for row in rows:
                if _record_id(row["activity_id"]) in wanted:
                    await self.client.delete_activity(row["activity_id"])
                    failed.discard(_record_id(row["activity_id"]))
            self.driver.publish("station", "database delete", serialNumber=serial,
                                returnCode=0, failedIds=sorted(failed))
            return
        start = params.get("startDate")
        end = params.get("endDate")
        query: dict[str, Any] = {"device_id": device_id, "nopreviews": 1}
        if start is not None:
            query["start"] = _day_start_ms(start)
        if end is not None:
            query["end"] = _day_start_ms(end + timedelta(days=1)) - 1
        rows = await self.client.activities(**query)
        if command == "database_query_latest_info":
            latest = rows[:1]
            data = [{"device_sn": serial, "event_count": len(rows),
                     **(_record(self.bells[device_id], latest[0]) if latest else {})}]
            self.driver.publish("station", "database query latest", serialNumber=serial,
                                returnCode=0, data=data)
        elif command == "database_query_local":
            self.driver.publish("station", "database query local", serialNumber=serial,
                                returnCode=0,
                                data=[_record(self.bells[device_id], r) for r in rows])
        elif command == "database_count_by_date":
            counts: dict[str, int] = {}
            for row in rows:
                day = datetime.fromtimestamp(row["event_time"] / 1000, UTC).strftime("%Y%m%d")
                counts[day] = counts.get(day, 0) + 1
            self.driver.publish("station", "database count by date", serialNumber=serial,
                                returnCode=0, data=[{"day": d, "total": c}
                                                    for d, c in sorted(counts.items())])

    async def stream(self, device: Entity, upstream: Upstream) -> None:
        await self.live.stream(self._device_id(device), device.serial, upstream)

    async def talk(self, device: Entity, talk: Talk) -> None:
        await self.live.talk(self._device_id(device), device.serial, talk)

    async def download(self, device: Entity, path: str, cipher_id: int | None,
                       download: Download) -> None:
        self._device_id(device)
        try:
            await download_clip(self.client, path, download)
        except SkyBellError as exc:
            raise self._error(exc, device) from None

    async def get_events(self, kind: str, start_ms: float, end_ms: float,
                         max_results: int | None) -> list[dict[str, Any]]:
        if kind not in ("video", "history") or not self.bells:
            return []
        try:
            rows = await self.client.activities(start=int(start_ms), end=int(end_ms),
                                                nopreviews=1)
        except SkyBellError as exc:
            raise self._error(exc, None) from None
        if kind == "video":
            rows = [r for r in rows if r.get("event_type") in ("doorbell", "motion", "lstream")]
        return [_record(self.bells[r["device_id"]], r) for r in rows
                if r.get("device_id") in self.bells]

    # ------------------------------------------------------------------ errors
    def _device_id(self, entity: Entity) -> str:
        for device_id, bell in self.bells.items():
            if bell.serial == entity.serial:
                return device_id
        raise NotSupported(f"{entity.serial} is not a SkyBell doorbell")

    def _error(self, exc: SkyBellError, entity: Entity | None, *,
               writing: bool = False) -> BridgeError:
        if isinstance(exc, DeviceOffline):
            if entity is not None and self.driver is not None:
                self.driver.set_station_connected(entity.serial, False)
            return StationConnectionTimeout(str(exc))
        if isinstance(exc, AuthFailed):
            self._report(exc)
            return StationNotConnected(str(exc))
        if isinstance(exc, CloudUnavailable):
            return StationConnectionTimeout(str(exc))
        if isinstance(exc, CloudRefused):
            log.warning("the SkyBell cloud refused", status=exc.status, message=exc.message)
            if writing:
                return InvalidPropertyValue(exc.message)
            return InvalidCommandValue(exc.message)
        return StationNotConnected(str(exc))


def _millis(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


def _day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _record_id(activity_id: str) -> int:
    return zlib.crc32(activity_id.encode())


def _record(bell: Device, row: dict[str, Any]) -> dict[str, Any]:
    """An activity as a eufy event record; ``cloud_path`` is the clip reference the download
    of a recording starts from."""
    start = int(row.get("event_time", 0))
    clip = clip_path(row)
    return {
        "monitor_id": _record_id(str(row.get("activity_id"))),
        "activity_id": row.get("activity_id"),
        "station_sn": bell.station_serial, "device_sn": bell.serial,
        "device_name": bell.name, "device_type": bell.type,
        "storage_type": 2, "storage_path": "", "cloud_path": clip, "video_url": clip,
        "video_ready": bool(clip) and row.get("video_ready") is not False,
        "thumb_path": "", "start_time": start, "end_time": start, "create_time": start,
        "event_type": row.get("event_type"),
        "has_human": 1 if "person" in (row.get("edge_tags") or []) else 0,
        "video_type": 0,
    }
