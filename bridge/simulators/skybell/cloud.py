"""The simulated SkyBell cloud's state and behaviour, independent of HTTP: accounts and tokens,
doorbells with their settings and telemetry, activities, triggers (webhooks) and LAN packets."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import random
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from bridge.backends.skybell import lan
from bridge.simulators.faults import HTTP_FAULTS, Faults
from bridge.simulators.scenery import Camera
from bridge.simulators.skybell import settings as catalogue
from bridge.simulators.skybell.clips import encode_clip
from bridge.simulators.skybell.kvs import LIVE_FAULTS
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="simulator.skybell")

TOKEN_SECONDS = 3600
REFRESHED_SECONDS = 86400
VIDEO_URL_SECONDS = 300
TRIGGER_FAILURE_LIMIT = 25
NAMES = ["Front Door", "Back Door", "Garage", "Side Gate", "Patio", "Porch", "Office", "Shed"]
TRIGGER_EVENTS = {"lstream", "doorbell", "motion", "sound", "telemetry", "availability", "ota",
                  "vready", "devicedeleted"}
VIDEO_READY_SECONDS = 0.5
"""How long after an activity its clip is uploaded (``video_ready``, webhook "vready")."""


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass
class SimDevice:
    """One simulated doorbell."""

    index: int
    device_id: str
    serial: str
    account_id: str
    settings: dict[str, Any]
    online: bool = True
    last_connected: float = field(default_factory=time.time)
    last_disconnected: float | None = None
    """When it last went offline; a doorbell that has been online has one (the recorded
    answers always carry both, and aioskybellgen compares them to tell whether it is up)."""
    last_seen: float = field(default_factory=time.time)
    """Its last telemetry check-in."""
    last_event_ms: int | None = None
    packet_sent_at: float | None = None
    """When its last event's LAN packet went out (None: none did), for latency figures."""
    booted: float = field(default_factory=time.time)
    reboots: int = 0
    tones_played: list[str] = field(default_factory=list)
    streaming: bool = False
    signal_level: int | None = None
    """Fixed Wi-Fi signal in dBm; None lets it drift a little with time."""

    lan_address: str | None = None
    """The doorbell's LAN address; None for 127.0.0.<index>, where its LAN packets come
    from."""

    def __post_init__(self) -> None:
        if self.last_disconnected is None:  # provisioned: offline, then online a minute later
            self.last_disconnected = self.last_connected - 60

    @property
    def ip_address(self) -> str:
        return self.lan_address or f"127.0.0.{self.index}"

    @property
    def name(self) -> str:
        return str(self.settings["device_name"])

    def device_settings(self) -> dict[str, Any]:
        return {
            "ESSID": "simulated-wifi", "OTA_type": None, "model_rev": "SB_TRIM2_0001",
            "MAC_address": f"9C:54:DA:10:{self.index // 256:02X}:{self.index % 256:02X}",
            "OTA_version": None, "OTA_signature": None, "serial_number": self.serial,
            "firmware_patch": 11, "firmware_version": "0.5.11", "hardware_version": "Ver A",
            "firmware_major_release": 0,
        }

    def telemetry(self) -> dict[str, Any]:
        """The last check-in: the recorded answers' keys (``essid``, ``ip_address``,
        ``last_seen``, ``link_quality``, ``signal_level``) and the seed's webhook ones."""
        wobble = int(time.time() / 60 + self.index) % 7
        signal = -40 - wobble if self.signal_level is None else self.signal_level
        return {
            "essid": "simulated-wifi", "last_seen": _iso(self.last_seen),
            "uptime": int(time.time() - self.booted), "boot_time": int(self.booted),
            "timestamp": int(time.time() * 1000), "wifi_noise": "-100",
            "link_quality": f"{min(100, 140 + signal)}/100", "signal_level": str(signal),
            "wifi_bit_rate": "54", "network_frequency": "2.437", "gateway": "127.0.0.254",
            "ip_address": self.ip_address, "ip_address_public": "198.51.100.7",
            "ip_subnet": "255.0.0.0",
        }

    def detail(self) -> dict[str, Any]:
        """The device as ``GET /devices/{id}`` and each row of ``GET /devices`` answer it.

        The seed's list rows show only ``settings.led_color``; the recorded answers' rows
        carry the whole device, and aioskybellgen reads settings and telemetry from the list
        alone, so both answer the whole device.  ``basic_motion`` and ``tones`` appear at the
        top level too, as recorded."""
        assert self.last_disconnected is not None
        return {
            "device_id": self.device_id, "client_id": str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                                     self.device_id)),
            "account_id": self.account_id, "serial": self.serial,
            "certificate_id": hashlib.sha256(self.serial.encode()).hexdigest(),
            "hardware": "Ver A:SB_TRIM2_0001", "firmware": "0.5.11",
            "invite_token": hashlib.sha256(self.device_id.encode()).hexdigest(),
            "last_event": None if self.last_event_ms is None else str(self.last_event_ms),
            "last_connected": _iso(self.last_connected),
            "last_disconnected": _iso(self.last_disconnected),
            "lat": None, "lon": None, "name": self.name, "doorlock_id": None,
            "location_id": None, "rapidsos": None, "using_rules": False,
            "settings": copy.deepcopy(self.settings),
            "basic_motion": dict(self.settings["basic_motion"]),
            "tones": copy.deepcopy(self.settings["tones"]),
            "device_settings": self.device_settings(), "manufactured": None,
            "created_at": "2024-01-01T00:00:00.000Z", "updated_at": _iso(time.time()),
            "telemetry": self.telemetry(),
        }


@dataclass
class Trigger:
    trigger_id: str
    device_id: str
    account_id: str
    url: str
    method: str
    events: list[str]
    header_name: str | None = None
    header_value: str | None = None
    enabled: bool = True
    fail_count: int = 0
    disabled_on: str | None = None
    disabled_reason: str | None = None
    created: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        out = {"trigger_id": self.trigger_id, "device_id": self.device_id,
               "account_id": self.account_id, "client_id": self.trigger_id,
               "type": "webhook", "enabled": self.enabled, "on_events": self.events,
               "fail_count": self.fail_count,
               "meta_config": {"url": self.url, "method": self.method,
                               "header_name": self.header_name,
                               "header_value": self.header_value},
               "created_at": _iso(self.created), "updated_at": _iso(self.created)}
        if self.disabled_on:
            out["disabled_on"] = self.disabled_on
            out["disabled_reason"] = self.disabled_reason
        return out


CLOUD_FAULTS = {
    "tokens_revoked": "every token given so far is forgotten (refresh tokens too): only a new "
                      "login gets in",
    "tokens_expired": "every access token given so far expires (a refresh gets a new one)",
    "api_key_revoked": "the API key is refused with 401",
    "offline": "every doorbell is offline (599) until this is cleared",
    "clock_jump_s": "the cloud's clock runs this many seconds off (activity times and "
                    "every answer's Date)",
}


@dataclass
class CloudConfig:
    """How the simulated cloud is set up (the command line's options)."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    email: str = "demo@example.com"
    password: str = "skybell-demo"
    devices: int = 2
    udp_host: str = "127.0.0.1"
    udp_port: int = 5000
    visitors: float | None = None
    telemetry_seconds: float = 3600.0
    """Doorbells check in with telemetry this often (webhook "telemetry")."""
    token_seconds: float = TOKEN_SECONDS
    reboot_seconds: float = 2.0
    kvs_url_seconds: int = 299
    """How long the live view's presigned signalling URL stays valid, as the real one."""
    tls: ssl.SSLContext | None = None
    """Serve HTTPS with this context, so that a client built for the real cloud's
    ``https://`` address can be pointed at the simulator unchanged."""


class SkyBellCloud:
    """Accounts, devices, activities and triggers."""

    def __init__(self, config: CloudConfig) -> None:
        self.config = config
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, config.email))
        self.api_key = config.api_key or str(uuid.uuid4())
        self._secret = secrets.token_bytes(32)
        self.tokens: dict[str, float] = {}  # id/access token -> expiry (epoch seconds)
        self.refresh_tokens: set[str] = set()
        self.logins = 0
        self.refreshes = 0
        self.requests = 0
        self.devices: dict[str, SimDevice] = {}
        for index in range(1, config.devices + 1):
            self.add_device(index)
        self.activities: list[dict[str, Any]] = []
        self.triggers: dict[str, Trigger] = {}
        self.videos: dict[str, tuple[str, float]] = {}  # token -> (activity, expiry)
        self.webhook_deliveries = 0
        self.failures: list[int] = []
        self.faults = Faults({**HTTP_FAULTS, **LIVE_FAULTS, **CLOUD_FAULTS})
        """Trouble switched on at run time (``POST /_sim/faults``), by name."""
        self.offline_listeners: list[Callable[[SimDevice], None]] = []
        self.base_url = ""
        self._tasks = BackgroundTasks()
        self._http: aiohttp.ClientSession | None = None
        self._video_cache: bytes | None = None
        self.cameras: dict[str, Camera] = {}

    def add_device(self, index: int) -> SimDevice:
        device_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.config.email}/device/{index}"))
        name = NAMES[(index - 1) % len(NAMES)] + ("" if index <= len(NAMES) else f" {index}")
        device = SimDevice(index, device_id, f"A3BAB0{index:04d}", self.account_id,
                           catalogue.defaults(name, device_id, self.account_id))
        self.devices[device_id] = device
        return device

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._tasks.spawn(self._check_ins())
        if self.config.visitors:
            self._tasks.spawn(self._random_visitors(self.config.visitors))

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        if self._http is not None:
            await self._http.close()

    # ------------------------------------------------------------------ auth
    def _jwt(self, seconds: float) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64(json.dumps({"sub": self.account_id, "email": self.config.email,
                               "exp": int(time.time() + seconds),
                               "jti": secrets.token_hex(8)}).encode())
        signature = b64(hmac.new(self._secret, f"{header}.{body}".encode(),
                                 hashlib.sha256).digest())
        return f"{header}.{body}.{signature}"

    def login(self, username: str, password: str) -> dict[str, Any] | None:
        if not (secrets.compare_digest(username, self.config.email)
                and secrets.compare_digest(password, self.config.password)):
            return None
        self.logins += 1
        seconds = self.config.token_seconds
        access, id_token, refresh = self._jwt(seconds), self._jwt(seconds), secrets.token_hex(48)
        self.tokens[access] = self.tokens[id_token] = time.time() + seconds
        self.refresh_tokens.add(refresh)
        return {"ChallengeParameters": {}, "AuthenticationResult": {
            "AccessToken": access, "ExpiresIn": int(seconds), "TokenType": "Bearer",
            "RefreshToken": refresh, "IdToken": id_token}}

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        if refresh_token not in self.refresh_tokens:
            return None
        self.refreshes += 1
        seconds = min(REFRESHED_SECONDS, self.config.token_seconds)
        access, id_token = self._jwt(seconds), self._jwt(seconds)
        self.tokens[access] = self.tokens[id_token] = time.time() + seconds
        return {"AccessToken": access, "ExpiresIn": int(seconds), "TokenType": "Bearer",
                "IdToken": id_token}

    def token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and time.time() < expiry

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (refresh tokens stay valid)."""
        for token in self.tokens:
            self.tokens[token] = 0

    def revoke_tokens(self) -> None:
        self.tokens.clear()
        self.refresh_tokens.clear()

    def logout(self) -> None:
        self.tokens.clear()
        self.refresh_tokens.clear()

    # ------------------------------------------------------------------ devices
    def update_settings(self, device: SimDevice, changes: Any) -> dict[str, Any]:
        """Apply only the keys sent and answer the whole settings object, as the recorded
        answers do (the seed shows an empty object)."""
        catalogue.apply(device.settings, changes)
        return copy.deepcopy(device.settings)

    def snapshot(self, device: SimDevice) -> bytes:
        camera = self.cameras.setdefault(device.device_id, Camera(seed=device.index))
        return camera.jpeg(visitor=self.recent_visitor(device))

    def recent_visitor(self, device: SimDevice) -> bool:
        return any(a["device_id"] == device.device_id and time.time() * 1000 -
                   a["event_time"] < 30_000 for a in self.activities[-5:])

    def reboot(self, device: SimDevice) -> None:
        device.reboots += 1
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, self.set_online, device, False)
        loop.call_later(0.1 + self.config.reboot_seconds, self.set_online, device, True)

    def set_online(self, device: SimDevice, online: bool) -> None:
        if device.online == online:
            return
        device.online = online
        # the timestamps have millisecond resolution and clients compare them to tell whether
        # the doorbell is up: the latest change is always at least a millisecond later
        assert device.last_disconnected is not None
        if online:
            device.last_connected = max(time.time(), device.last_disconnected + 0.001)
            device.booted = time.time()
        else:
            device.last_disconnected = max(time.time(), device.last_connected + 0.001)
            for listener in self.offline_listeners:
                listener(device)
        self.fire(device, "availability", {"detail": {"state": "connected" if online
                                                      else "disconnected"}})

    # ------------------------------------------------------------------ events
    def event(self, device: SimDevice, kind: str, *, person: bool = False) -> dict[str, Any]:
        """A doorbell press, a motion or a live view ("lstream"): the activity, the LAN
        packet (presses and motions only) and the webhooks; the clip follows shortly."""
        if kind != "lstream":  # the doorbell's LAN packet goes out first, the upload after
            self._send_lan(device, kind)
        now = self.clock()
        preview = self.snapshot(device)
        activity: dict[str, Any] = {
            "event_time": int(now * 1000), "created_at": _iso(now),
            "account_id": self.account_id,
            "device_id": device.device_id, "device_name": device.name,
            "activity_id": str(uuid.uuid4()), "event_type": kind,
            "date": datetime.fromtimestamp(now, UTC).strftime("%m/%d/%Y"),
            "image": base64.b64encode(preview).decode(),
            "edge_tags": [kind, "person"] if person else [kind], "events": [], "ai_ppe": None,
            # no clip yet: _video_ready fills these in, as the recorded rows show them
            "video_ready": False, "video_ready_time": None, "video_size": None,
            "video_url": None,
        }
        self.activities.append(activity)
        device.last_event_ms = activity["event_time"]
        log.info("activity", device=device.name, kind=kind, person=person)
        if kind == "lstream":  # the seed: no preview and no activity in a live view's webhook
            self.fire(device, kind, {"detail": {"state": "lstream",
                                                "device": device.device_id}})
        else:
            self.fire(device, kind, {"date_time": activity["event_time"],
                                     "preview": activity["image"],
                                     "activity_id": activity["activity_id"]})
        self._tasks.spawn(self._video_ready(device, activity))
        return activity

    def clock(self) -> float:
        """The cloud's clock: the machine's, or off by the ``clock_jump_s`` fault."""
        return time.time() + float(self.faults.get("clock_jump_s", 0))

    def _send_lan(self, device: SimDevice, kind: str) -> None:
        """The doorbell's LAN packet, from its own address, at once: nothing the cloud does
        for the event comes before it (a plain non-blocking datagram socket; UDP may drop)."""
        device.packet_sent_at = None
        if not self.config.udp_port:
            return
        packet = lan.BUTTON_PRESSED if kind == "doorbell" else lan.MOTION
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.bind((device.ip_address, 0))
                sent_at = time.time()
                sock.sendto(packet, (self.config.udp_host, self.config.udp_port))
        except OSError as exc:
            log.info("cannot send a LAN packet", source=device.ip_address, error=str(exc))
            return
        device.packet_sent_at = sent_at

    async def _video_ready(self, device: SimDevice, activity: dict[str, Any]) -> None:
        """The clip is uploaded: the row says so and the webhook "vready" fires.

        ``video_url`` is a path relative to the API base, as in the recorded answers (the
        seed's example shows a presigned S3 address instead); the path answers the clip's
        short-lived download address."""
        await asyncio.sleep(VIDEO_READY_SECONDS)
        video = await self.video()
        activity.update(video_ready=True, video_ready_time=_iso(time.time()),
                        video_size=len(video),
                        video_url=f"/activity/{activity['activity_id']}/video")
        self.fire(device, "vready", {"detail": {"activity_id": activity["activity_id"],
                                                "size": len(video),
                                                "device_id": device.device_id}})

    def fire(self, device: SimDevice, event: str, payload: dict[str, Any]) -> None:
        """Call every enabled trigger of the device that subscribed to ``event``."""
        body = {"event": event, "date_time": payload.pop("date_time", _iso(time.time())),
                "device_id": device.device_id, "name": device.name, **payload}
        for trigger in list(self.triggers.values()):
            if trigger.device_id == device.device_id and trigger.enabled \
                    and event in trigger.events:
                self._tasks.spawn(self._deliver(trigger, body))

    async def _deliver(self, trigger: Trigger, body: dict[str, Any]) -> None:
        assert self._http is not None
        headers = {trigger.header_name: trigger.header_value or ""} \
            if trigger.header_name else {}
        try:
            if trigger.method == "post":
                response = await self._http.post(trigger.url, json=body, headers=headers)
            else:
                response = await self._http.get(trigger.url, headers=headers)
            response.release()
            ok = response.status < 400
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            trigger.fail_count = 0
            self.webhook_deliveries += 1
            return
        trigger.fail_count += 1
        if trigger.fail_count >= TRIGGER_FAILURE_LIMIT:
            trigger.enabled = False
            trigger.disabled_on = _iso(time.time())
            trigger.disabled_reason = f"{TRIGGER_FAILURE_LIMIT} failures in a row"

    def telemetry(self, device: SimDevice) -> None:
        """A telemetry check-in, as the doorbells send hourly."""
        device.last_seen = time.time()
        self.fire(device, "telemetry", {"detail": device.telemetry()})

    async def _check_ins(self) -> None:
        while True:
            await asyncio.sleep(self.config.telemetry_seconds)
            for device in self.devices.values():
                if device.online:
                    self.telemetry(device)

    async def _random_visitors(self, mean_seconds: float) -> None:
        while True:
            await asyncio.sleep(random.expovariate(1 / mean_seconds))
            online = [d for d in self.devices.values() if d.online]
            if online:
                device = random.choice(online)
                kind = random.choice(["doorbell", "motion", "motion"])
                self.event(device, kind, person=kind == "motion" and random.random() < 0.5)

    # ------------------------------------------------------------------ media
    async def video(self) -> bytes:
        """Every activity's clip (see clips.py), encoded once, on a worker thread: in demo
        mode the simulator shares the bridge's event loop."""
        if self._video_cache is None:
            self._video_cache = await asyncio.to_thread(encode_clip)
        return self._video_cache

    def video_url(self, activity_id: str) -> str:
        token = secrets.token_urlsafe(16)
        self.videos[token] = (activity_id, time.time() + VIDEO_URL_SECONDS)
        return f"{self.base_url}/_media/{activity_id}.mp4?Expires=" \
               f"{int(time.time() + VIDEO_URL_SECONDS)}&Signature={token}"

