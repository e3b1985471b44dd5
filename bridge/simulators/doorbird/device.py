"""The simulated door station's state and behaviour, independent of HTTP.

What happens on a ring or a motion is what the LAN-2-LAN API describes: encrypted UDP packets
repeated on every event port for every user, H/L lines on open monitor streams, the HTTP
favorites that matching schedule entries point at, and a new history picture.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import string
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from bridge.backends.doorbird import packets
from bridge.simulators.doorbird.schedule import active, factory_schedule
from bridge.simulators.faults import HTTP_FAULTS, Faults
from bridge.simulators.scenery import Camera
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="simulator.doorbird")

SESSION_SECONDS = 600
HISTORY_SIZE = 50
LIVE_AFTER_RING = 300.0  # video and audio: 5 minutes after a ring
IMAGE_AFTER_RING = 60.0  # still image: 1 minute after a ring
KEEPALIVE_SECONDS = 7.0
VISITOR_SECONDS = 30.0  # the camera shows someone this long after a ring or a motion
RECORDED_SECONDS = 60  # audio-transmit.cgi keeps the last minute of what it received
MULAW_BYTES_PER_SECOND = 8000
REPEATS = 3  # each event packet is sent this many times on each port
SIP_RANGES = {
    "enable": (0, 1), "mic_volume": (1, 100), "spk_volume": (1, 100), "dtmf": (0, 1),
    "relay1_passcode": (0, 99_999_999), "incoming_call_enable": (0, 1), "anc": (0, 1),
    "ring_time_limit": (10, 300), "call_time_limit": (30, 300),
}
SIP_DEFAULTS: dict[str, Any] = {
    "enable": 0, "mic_volume": 33, "spk_volume": 70, "dtmf": 0, "relay1_passcode": None,
    "incoming_call_enable": 0, "incoming_call_user": "", "anc": 1, "ring_time_limit": 300,
    "call_time_limit": 300, "user": "", "password": "", "url": "",
}


def _random_text(size: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(size))


@dataclass
class DoorBirdConfig:
    """How the simulated station is set up (the command line's options)."""

    user: str = "ghxyzw0001"
    password: str = "doorbird-demo"
    host: str = "127.0.0.1"
    http_port: int = 0
    notification_key: str = field(default_factory=lambda: _random_text(48))
    event_ports: list[int] = field(default_factory=lambda: [6524, 35344])
    event_host: str = "127.0.0.1"
    relays: list[str] = field(default_factory=lambda: ["1", "2"])
    buttons: int = 1
    """Call buttons; the schedule comes with a doorbell entry for each."""
    rtsp_port: int | None = 554
    """RTSP (``/mpeg/media.amp``); 0 for any free port, None for none.  A port that cannot be
    bound (taken, or privileged) gives way to a free one."""
    rtsp_http_port: int | None = 8557
    """RTSP over HTTP; 0 for any free port, None for none."""
    device_type: str = "DoorBird D2101V"
    firmware: str = "000130"
    build_number: str = "15870439"
    mac: str = "1CCAE3711111"
    watch_always: bool = True
    stream_slots: int = 4
    """Live streams served at once, RTSP players, ``video.cgi`` and ``audio-receive.cgi``
    together; one more is answered 509 (HTTP) or 453 (RTSP)."""
    udp_version: int = 2
    other_users: list[str] = field(default_factory=lambda: ["ghxyzw0002"])
    lockout_after: int = 5
    lockout_seconds: float = 60.0
    reboot_seconds: float = 3.0
    visitors: float | None = None
    """Mean seconds between random visitors (rings and motion); None for none."""


STATION_FAULTS = {
    "busy": "every request answers 503 (the station is busy)",
    "lockout": "every request answers 423 (locked out after wrong credentials)",
    "streams_exhausted": "every stream slot is taken: video and audio answer 509, RTSP 453",
    "truncate_streams": "MJPEG streams break off mid-picture; RTSP players are cut off",
    "udp_replay": "every event also re-sends the packets of the events before it",
    "udp_out_of_order": "each event's packets are followed by the previous event's",
    "udp_garbage": "garbage datagrams go with every event",
    "clock_jump_s": "the station's clock runs this many seconds off (packet timestamps)",
    "offline": "the station is unreachable (connections die unanswered) until cleared",
}


class StreamSlots:
    """The station's live stream capacity, shared by every kind of stream it serves."""

    def __init__(self, limit: int, exhausted: Callable[[], bool] = lambda: False) -> None:
        self.limit = limit
        self.used = 0
        self._exhausted = exhausted

    def take(self) -> Callable[[], None] | None:
        """A slot's release (to call once the stream ends; calling it again does nothing),
        or None when every slot is taken."""
        if self.used >= self.limit or self._exhausted():
            return None
        self.used += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.used -= 1

        return release


class DoorBirdDevice:
    """Everything the station knows and does."""

    def __init__(self, config: DoorBirdConfig) -> None:
        self.config = config
        self.camera = Camera(seed=int(config.mac[-4:], 16))
        self.sessions: dict[str, float] = {}
        self.history: dict[str, deque[tuple[float, bytes]]] = {
            "doorbell": deque(maxlen=HISTORY_SIZE), "motionsensor": deque(maxlen=HISTORY_SIZE)}
        self.favorites: dict[str, dict[str, dict[str, str]]] = {"http": {}, "sip": {}}
        self.schedules = factory_schedule(config.buttons, config.relays)
        self.sip: dict[str, Any] = dict(SIP_DEFAULTS)
        self.relay_log: list[tuple[float, str]] = []
        self.light_log: list[float] = []
        self.last_ring = 0.0
        self.ring_count = 0
        self.packets_sent_at: float | None = None
        """When the last event's UDP packets went out (None: none did), for latency figures."""
        self.failures: deque[float] = deque()
        self.locked_until = 0.0
        self.busy_until = 0.0
        self.offline = False
        self.rebooting_until = 0.0
        self.restarts = 0
        self.monitors: set[asyncio.Queue[str]] = set()
        self.faults = Faults({**HTTP_FAULTS, **STATION_FAULTS})
        self.fault_listeners: list[Callable[[], None]] = []
        """Called after the faults change (the RTSP server cuts its streams)."""
        self.slots = StreamSlots(config.stream_slots,
                                 exhausted=lambda: bool(self.faults.get("streams_exhausted")))
        self._sent_events: deque[list[bytes]] = deque(maxlen=10)
        self.outage_listeners: list[Callable[[], None]] = []
        """Called when the station goes offline or reboots: its streams end."""
        self.transmitting = False
        self.audio_received = 0
        self._recorded = bytearray()
        self.favorite_calls: list[str] = []
        self.notifications: list[str] = []
        """The pushes to the DoorBird app (``notify`` outputs): ``doorbell 1``, ``motion``."""
        self.connections: list[float] = []
        self.states = {"doorbell": "L", "motionsensor": "L"}
        self._next_favorite = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tasks = BackgroundTasks()
        self._http: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.config.host, 0), allow_broadcast=True)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._tasks.spawn(self._keepalives())
        if self.config.visitors:
            self._tasks.spawn(self._random_visitors(self.config.visitors))

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        if self._udp is not None:
            self._udp.close()
        if self._http is not None:
            await self._http.close()

    # ------------------------------------------------------------------ availability
    @property
    def reachable(self) -> bool:
        return not self.offline and time.monotonic() >= self.rebooting_until \
            and not self.faults.get("offline")

    @property
    def busy(self) -> bool:
        return time.monotonic() < self.busy_until or bool(self.faults.get("busy"))

    def restart(self) -> None:
        """Reboot: unreachable for a while; sessions and monitor streams are gone."""
        self.restarts += 1
        self.rebooting_until = time.monotonic() + self.config.reboot_seconds
        self.sessions.clear()
        self._close_monitors()

    def go_offline(self) -> None:
        self.offline = True
        self._close_monitors()

    def _close_monitors(self) -> None:
        for queue in tuple(self.monitors):
            queue.put_nowait("")  # tells the stream to end
        for listener in tuple(self.outage_listeners):
            listener()

    # ------------------------------------------------------------------ credentials
    def check_password(self, user: str, password: str) -> bool:
        return secrets.compare_digest(user, self.config.user) and secrets.compare_digest(
            password, self.config.password)

    def locked_out(self) -> bool:
        return time.monotonic() < self.locked_until or bool(self.faults.get("lockout"))

    def record_failure(self) -> None:
        now = time.monotonic()
        self.failures.append(now)
        while self.failures and now - self.failures[0] > 60:
            self.failures.popleft()
        if len(self.failures) >= self.config.lockout_after:
            self.locked_until = now + self.config.lockout_seconds
            self.failures.clear()
            log.info("locked out after repeated wrong credentials",
                     seconds=self.config.lockout_seconds)

    def new_session(self) -> str:
        session = _random_text(60)
        self.sessions[session] = time.monotonic() + SESSION_SECONDS
        return session

    def session_valid(self, session: str) -> bool:
        expiry = self.sessions.get(session)
        return expiry is not None and time.monotonic() < expiry

    # ------------------------------------------------------------------ permissions
    def may_watch(self, window: float) -> bool:
        return self.config.watch_always or time.time() - self.last_ring < window

    # ------------------------------------------------------------------ actions
    def open_door(self, relay: str) -> bool:
        if relay not in self.config.relays:
            return False
        self.relay_log.append((time.time(), relay))
        return True

    def light_on(self) -> None:
        self.light_log.append(time.time())

    def visitor_present(self) -> bool:
        return time.time() - max(self.last_ring, self._last_motion()) < VISITOR_SECONDS

    def picture(self) -> bytes:
        return self.camera.jpeg(visitor=self.visitor_present())

    def record_audio(self, mulaw: bytes) -> None:
        """Keep what a client sends to the speaker (the last minute of it)."""
        self.audio_received += len(mulaw)
        self._recorded += mulaw
        excess = len(self._recorded) - RECORDED_SECONDS * MULAW_BYTES_PER_SECOND
        if excess > 0:
            del self._recorded[:excess]

    def recorded_audio(self) -> bytes:
        """The µ-law audio-transmit.cgi received, oldest first (at most a minute)."""
        return bytes(self._recorded)

    def _last_motion(self) -> float:
        motion = self.history["motionsensor"]
        return motion[-1][0] if motion else 0.0

    def save_favorite(self, kind: str, title: str, value: str, fav_id: str | None) -> str:
        if fav_id is None:
            fav_id = str(self._next_favorite)
            self._next_favorite += 1
        self.favorites[kind][fav_id] = {"title": title, "value": value}
        return fav_id

    def save_schedule(self, entry: dict[str, Any]) -> None:
        """Replaces the entry of the same input and param where it stands, or appends."""
        key = (entry["input"], entry.get("param", ""))
        for index, existing in enumerate(self.schedules):
            if (existing["input"], existing.get("param", "")) == key:
                self.schedules[index] = entry
                return
        self.schedules.append(entry)

    def remove_schedule(self, input_: str, param: str) -> None:
        self.schedules = [e for e in self.schedules
                          if (e["input"], e.get("param", "")) != (input_, param)]

    # ------------------------------------------------------------------ events
    async def ring(self, doorbell: int = 1) -> None:
        now = time.time()
        self.last_ring = now
        self.ring_count += 1
        log.info("ring", doorbell=doorbell)
        await self._event(str(doorbell), "doorbell", "doorbell", str(doorbell), now)

    async def motion(self) -> None:
        now = time.time()
        log.info("motion")
        await self._event("motion", "motionsensor", "motion", "", now)

    async def _event(self, udp_event: str, monitor_name: str, schedule_input: str,
                     schedule_param: str, moment: float) -> None:
        """The packets go first, as from a real station: the picture is taken after."""
        self._send_event_packets(udp_event,
                                 int(moment) + int(self.faults.get("clock_jump_s", 0)))
        self.history[monitor_name].append((moment, self.camera.jpeg(moment, visitor=True)))
        self._monitor_pulse(monitor_name)
        await self._run_schedules(schedule_input, schedule_param)

    def _send_event_packets(self, event: str, timestamp: int) -> None:
        self.packets_sent_at = None
        if self._udp is None or not self.reachable:
            return
        key = packets.notification_key(self.config.notification_key)
        datagrams = []
        for user in (self.config.user, *self.config.other_users):
            if self.config.udp_version == 1:
                datagrams.append(packets.encode_v1(self.config.password, user[:6], event,
                                                   timestamp))
            else:
                # every user has a key of their own; others' packets carry another key
                user_key = key if user == self.config.user else secrets.token_bytes(32)
                datagrams.append(packets.encode_v2(user_key, user[:6], event, timestamp))
        faults = self.faults
        earlier = [d for sent in self._sent_events for d in sent]
        self._sent_events.append(datagrams)
        outgoing = list(datagrams) * REPEATS
        if faults.get("udp_replay"):  # every earlier event's packets again, first
            outgoing = earlier + outgoing
        if faults.get("udp_out_of_order") and earlier:  # the last event's packets after these
            outgoing += self._sent_events[-2]
        if faults.get("udp_garbage"):
            outgoing += [secrets.token_bytes(n) for n in (3, 47, 50, 200)] \
                + [packets.IDENT + b"\x02" + secrets.token_bytes(42)]
        self.packets_sent_at = time.time()
        for datagram in outgoing:
            for port in self.config.event_ports:
                self._udp.sendto(datagram, (self.config.event_host, port))

    def _monitor_pulse(self, name: str) -> None:
        self.states[name] = "H"
        for queue in tuple(self.monitors):
            queue.put_nowait(f"{name}:H")

        def low() -> None:
            self.states[name] = "L"
            for queue in tuple(self.monitors):
                queue.put_nowait(f"{name}:L")

        asyncio.get_running_loop().call_later(1.0, low)

    async def _run_schedules(self, input_: str, param: str) -> None:
        now = time.time()
        for entry in self.schedules:
            if entry.get("input") != input_ or entry.get("param", "") not in ("", param):
                continue
            for output in entry.get("output", []):
                if str(output.get("enabled", "1")) != "1" or not active(
                        output.get("schedule", {}), now):
                    continue
                if output.get("event") == "notify":
                    self.notifications.append(f"{input_} {param}".strip())
                elif output.get("event") == "http":
                    favorite = self.favorites["http"].get(str(output.get("param")))
                    if favorite is not None:
                        self._tasks.spawn(self._call_favorite(favorite["value"]))
                elif output.get("event") == "relay":
                    self.open_door(str(output.get("param", "1")))

    async def _call_favorite(self, url: str) -> None:
        assert self._http is not None
        self.favorite_calls.append(url)
        try:
            async with self._http.get(url) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("favorite call failed", error=str(exc))

    async def _keepalives(self) -> None:
        beacon = b"DBKA" + bytes.fromhex(self.config.mac) + self.config.user[:6].encode()
        while True:
            if self._udp is not None and self.reachable:
                for port in self.config.event_ports:
                    self._udp.sendto(beacon, (self.config.event_host, port))
            await asyncio.sleep(KEEPALIVE_SECONDS)

    async def _random_visitors(self, mean_seconds: float) -> None:
        while True:
            await asyncio.sleep(random.expovariate(1 / mean_seconds))
            if random.random() < 0.5:
                await self.ring(1)
            else:
                await self.motion()

    def snapshot(self) -> dict[str, Any]:
        """What tests and the demo page may look at."""
        return {
            "relays": [r for _, r in self.relay_log], "lights": len(self.light_log),
            "favorites": self.favorites, "schedules": json.loads(json.dumps(self.schedules)),
            "favorite_calls": list(self.favorite_calls),
            "notifications": list(self.notifications), "restarts": self.restarts,
            "audio_received": self.audio_received, "monitors": len(self.monitors),
            "streams": self.slots.used,
            "sip": {k: v for k, v in self.sip.items() if k not in ("password",
                                                                   "relay1_passcode")},
            "connections": len(self.connections), "reachable": self.reachable,
        }

