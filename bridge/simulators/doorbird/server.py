"""The simulated station's HTTP API (``/bha-api/``) and its control hooks (``/_sim/``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from bridge.simulators.doorbird.device import (
    IMAGE_AFTER_RING,
    LIVE_AFTER_RING,
    SIP_DEFAULTS,
    SIP_RANGES,
    DoorBirdConfig,
    DoorBirdDevice,
)
from bridge.simulators.doorbird.live import AUDIO_CHUNK, AUDIO_RATE, mulaw_tone
from bridge.simulators.doorbird.rtsp import DEFAULT_PATH, StationRtsp
from bridge.simulators.doorbird.schedule import invalid_entry
from bridge.simulators.doorbird.viewer import VIEW_HTML
from bridge.simulators.faults import Faults, http_faults
from bridge.webapp import serve

log = structlog.get_logger(component="simulator.doorbird")

REALM = "DoorBird"
MAX_MONITORS = 8
VIDEO_FPS = 8
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bha(code: str = "1", **fields: Any) -> web.Response:
    """The JSON envelope of every DoorBird answer."""
    status = 200 if code == "1" else 400
    return web.json_response({"BHA": {"RETURNCODE": code, **fields}}, status=status)


class DoorBirdSimulator:
    """A DoorBird door station on loopback: HTTP API, UDP events, monitor streams."""

    def __init__(self, config: DoorBirdConfig | None = None) -> None:
        self.config = config or DoorBirdConfig()
        self.device = DoorBirdDevice(self.config)
        self._runner: web.AppRunner | None = None
        self._nonces: set[str] = set()
        self._seen_transports: weakref.WeakSet[Any] = weakref.WeakSet()
        self.port = self.config.http_port
        self.rtsp: StationRtsp | None = None
        self._reserved: dict[str, socket.socket] = {}

    @property
    def address(self) -> str:
        """``host:port`` as the bridge's configuration takes it."""
        return f"{self.config.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        """Trouble to switch on (``POST /_sim/faults``, ``--fault``)."""
        return self.device.faults

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def rtsp_port(self) -> int | None:
        """The port of RTSP, or None when the station has none."""
        return None if self.rtsp is None else self.rtsp.port

    def rtsp_url(self, path: str = DEFAULT_PATH) -> str | None:
        """The RTSP address of a stream (without credentials), or None without RTSP."""
        return None if self.rtsp is None else self.rtsp.url(path)

    @property
    def rtsp_http_port(self) -> int | None:
        """The port of RTSP over HTTP, or None when the station has none."""
        return self._reserved_port("rtsp-http")

    def _reserved_port(self, name: str) -> int | None:
        sock = self._reserved.get(name)
        return None if sock is None else int(sock.getsockname()[1])

    def describe(self) -> list[str]:
        """How to use it, for people."""
        lines = [f"user {self.config.user}, relays {', '.join(self.config.relays)}",
                 f"viewer: {self.url}/bha-api/view.html",
                 f"ring:   curl -X POST '{self.url}/_sim/ring?n=1'",
                 f"motion: curl -X POST {self.url}/_sim/motion"]
        if self.rtsp is not None:
            lines.append(f"rtsp:   {', '.join(self.rtsp.url(p) for p in self.rtsp.cameras)} "
                         "(?sessionid=... or Basic credentials)")
        ports = [f"{name} {self._reserved_port(name)}" for name in self._reserved]
        if ports:
            lines.append(f"reserved ports (no stream served yet): {', '.join(ports)}")
        return lines

    async def start(self) -> None:
        await self.device.start()
        if self.config.rtsp_port is not None:
            self.rtsp = StationRtsp(self.device)
            await self.rtsp.start(self.config.rtsp_port)
        if self.config.rtsp_http_port is not None:
            self._reserved["rtsp-http"] = _reserve_port(self.config.host,
                                                        self.config.rtsp_http_port, "rtsp-http")
        app = web.Application(middlewares=[
            self._availability,
            http_faults(self.device.faults, lambda r: r.path.startswith("/bha-api/")),
            self._auth])
        app.add_routes(self._routes())
        self._runner, self.port = await serve(app, self.config.host, self.config.http_port)
        log.info("DoorBird simulator listening", url=self.url, user=self.config.user)

    async def stop(self) -> None:
        self.device.go_offline()  # ends the open streams
        if self.rtsp is not None:
            await self.rtsp.stop()
            self.rtsp = None
        await self.device.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        for sock in self._reserved.values():
            sock.close()
        self._reserved.clear()

    # ------------------------------------------------------------------ middlewares
    @web.middleware
    async def _availability(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        transport = request.transport
        if transport is not None and transport not in self._seen_transports:
            self._seen_transports.add(transport)  # a new TCP connection
            self.device.connections.append(time.monotonic())
        if not self.device.reachable:
            # an unreachable device: the connection dies without an answer
            if transport is not None:
                transport.abort()
            raise web.HTTPServiceUnavailable()
        if self.device.busy:
            return web.Response(status=503, text="busy")
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        device = self.device
        if device.locked_out():
            return web.Response(status=423, text="locked")
        session = request.query.get("sessionid")
        if session is not None and device.session_valid(session):
            return await handler(request)
        verdict = self._credentials(request)
        if verdict is True:
            return await handler(request)
        if verdict is False:
            device.record_failure()
            if device.locked_out():
                return web.Response(status=423, text="locked")
        return self._challenge()

    def _credentials(self, request: web.Request) -> bool | None:
        """True for good credentials, False for wrong ones, None when none were given."""
        query = request.query
        if "http-user" in query:
            return self.device.check_password(query["http-user"],
                                              query.get("http-password", ""))
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self.device.check_password(user, password)
        if scheme.lower() == "digest":
            return self._digest_ok(request, value)
        return None

    def _digest_ok(self, request: web.Request, value: str) -> bool:
        fields = _parse_digest(value)
        if fields.get("nonce") not in self._nonces or fields.get("realm") != REALM:
            return False
        if fields.get("username") != self.config.user:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.config.user}:{REALM}:{self.config.password}")
        ha2 = md5(f"{request.method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = md5(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:"
                           f"{fields.get('cnonce', '')}:{fields['qop']}:{ha2}")
        else:
            expected = md5(f"{ha1}:{fields['nonce']}:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))

    def _challenge(self) -> web.Response:
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        response = web.Response(status=401, text="unauthorized")
        response.headers.add("WWW-Authenticate",
                             f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", '
                             'algorithm=MD5')
        response.headers.add("WWW-Authenticate", f'Basic realm="{REALM}"')
        return response

    # ------------------------------------------------------------------ routes
    def _routes(self) -> list[web.AbstractRouteDef]:
        api = "/bha-api/"
        return [
            web.get(api + "info.cgi", self.info),
            web.get(api + "view.html", self.view),
            web.get(api + "getsession.cgi", self.getsession),
            web.get(api + "open-door.cgi", self.open_door),
            web.get(api + "light-on.cgi", self.light_on),
            web.get(api + "image.cgi", self.image),
            web.get(api + "history.cgi", self.history),
            web.get(api + "video.cgi", self.video),
            web.get(api + "audio-receive.cgi", self.audio_receive),
            web.post(api + "audio-transmit.cgi", self.audio_transmit),
            web.get(api + "monitor.cgi", self.monitor),
            web.get(api + "favorites.cgi", self.favorites),
            web.get(api + "schedule.cgi", self.schedule),
            web.post(api + "schedule.cgi", self.schedule_save),
            web.get(api + "restart.cgi", self.restart),
            web.get(api + "sip.cgi", self.sip),
            web.post("/_sim/ring", self.sim_ring),
            web.post("/_sim/motion", self.sim_motion),
            web.post("/_sim/offline", self.sim_offline),
            web.post("/_sim/online", self.sim_online),
            web.post("/_sim/busy", self.sim_busy),
            web.get("/_sim/state", self.sim_state),
            web.get("/_sim/faults", self.sim_faults),
            web.post("/_sim/faults", self.sim_faults),
            web.get("/_sim/audio", self.sim_audio),
        ]

    async def info(self, request: web.Request) -> web.Response:
        c = self.config
        return bha(VERSION=[{
            "FIRMWARE": c.firmware, "BUILD_NUMBER": c.build_number,
            "PRIMARY_MAC_ADDR": c.mac, "WIFI_MAC_ADDR": "", "RELAYS": list(c.relays),
            "DEVICE-TYPE": c.device_type,
        }])

    async def view(self, request: web.Request) -> web.Response:
        return web.Response(text=VIEW_HTML, content_type="text/html")

    async def getsession(self, request: web.Request) -> web.Response:
        old = request.query.get("invalidate")
        if old is not None:
            self.device.sessions.pop(old, None)
            return bha(SESSIONID="")
        return bha(SESSIONID=self.device.new_session(),
                   NOTIFICATION_ENCRYPTION_KEY=self.config.notification_key)

    async def open_door(self, request: web.Request) -> web.Response:
        relay = request.query.get("r", "1")
        if not self.device.open_door(relay):
            return bha("0")
        return bha()

    async def light_on(self, request: web.Request) -> web.Response:
        self.device.light_on()
        return bha()

    async def image(self, request: web.Request) -> web.Response:
        if not self.device.may_watch(IMAGE_AFTER_RING):
            return web.Response(status=204)
        return web.Response(body=self.device.picture(), content_type="image/jpeg")

    async def history(self, request: web.Request) -> web.Response:
        try:
            index = int(request.query.get("index", "1"))
        except ValueError:
            return web.Response(status=400, text="index is a number from 1 to 50")
        event = request.query.get("event", "doorbell")
        if event not in self.device.history or not 1 <= index <= 50:
            return web.Response(status=400, text="index 1..50, event doorbell|motionsensor")
        images = self.device.history[event]
        if index > len(images):
            return web.Response(status=404, text="no such history image")
        moment, jpeg = images[-index]
        response = web.Response(body=jpeg, content_type="image/jpeg")
        response.last_modified = moment
        return response

    async def video(self, request: web.Request) -> web.StreamResponse:
        if not self.device.may_watch(LIVE_AFTER_RING):
            return web.Response(status=204)
        release = self.device.slots.take()
        if release is None:
            return web.Response(status=509, text="every stream slot is taken")
        response = web.StreamResponse(headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=myboundary"})
        try:
            await response.prepare(request)
            while self.device.reachable:
                frame = self.device.picture()
                if self.device.faults.get("truncate_streams"):  # half a picture, then gone
                    await response.write(b"--myboundary\r\nContent-Type: image/jpeg\r\n"
                                         b"Content-Length: " + str(len(frame)).encode()
                                         + b"\r\n\r\n" + frame[:len(frame) // 2])
                    if request.transport is not None:
                        request.transport.abort()
                    break
                await response.write(
                    b"--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(frame)).encode() + b"\r\n\r\n" + frame + b"\r\n")
                await asyncio.sleep(1 / VIDEO_FPS)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            release()
        return response

    async def audio_receive(self, request: web.Request) -> web.StreamResponse:
        if not self.device.may_watch(LIVE_AFTER_RING):
            return web.Response(status=204)
        release = self.device.slots.take()
        if release is None:
            return web.Response(status=509, text="every stream slot is taken")
        response = web.StreamResponse(headers={"Content-Type": "audio/basic"})
        tone = mulaw_tone()
        start, sent = time.monotonic(), 0
        try:
            await response.prepare(request)
            while self.device.reachable:  # 20 ms at a time, in step with the clock
                offset = (sent * AUDIO_CHUNK) % len(tone)
                await response.write(tone[offset:offset + AUDIO_CHUNK])
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * AUDIO_CHUNK / AUDIO_RATE
                                        - time.monotonic()))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            release()
        return response

    async def audio_transmit(self, request: web.Request) -> web.Response:
        if not self.device.may_watch(LIVE_AFTER_RING):
            return web.Response(status=204)
        if self.device.transmitting:
            return web.Response(status=503, text="another client is transmitting")
        self.device.transmitting = True
        try:
            async for chunk in request.content.iter_any():
                self.device.record_audio(chunk)
        finally:
            self.device.transmitting = False
        return bha()

    async def monitor(self, request: web.Request) -> web.StreamResponse:
        check = request.query.get("check")
        if check is not None:
            if check not in self.device.states:
                return web.Response(status=400)
            return web.Response(text=f"{check}={int(self.device.states[check] == 'H')}")
        wanted = [w for w in request.query.get("ring", "doorbell,motionsensor").split(",")
                  if w in self.device.states]
        if len(self.device.monitors) >= MAX_MONITORS:
            return web.Response(status=509, text="too many monitor streams")
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.device.monitors.add(queue)
        response = web.StreamResponse(headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=ioboundary"})
        try:
            await response.prepare(request)
            for name in wanted:
                await response.write(_monitor_part(f"{name}:{self.device.states[name]}"))
            while True:
                try:
                    line = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:  # a heartbeat of the current states
                    for name in wanted:
                        await response.write(_monitor_part(
                            f"{name}:{self.device.states[name]}"))
                    continue
                if not line:
                    break
                if line.split(":")[0] in wanted:
                    await response.write(_monitor_part(line))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.device.monitors.discard(queue)
        return response

    async def favorites(self, request: web.Request) -> web.Response:
        query = request.query
        action = query.get("action")
        if action is None:
            return web.json_response(self.device.favorites)
        kind = query.get("type")
        if kind not in ("http", "sip"):
            return web.Response(status=400, text="type is http or sip")
        if action == "save":
            if "title" not in query or "value" not in query:
                return web.Response(status=400, text="title and value are required")
            self.device.save_favorite(kind, query["title"], query["value"], query.get("id"))
            return web.Response(status=200)
        if action == "remove":
            if self.device.favorites[kind].pop(query.get("id", ""), None) is None:
                return web.Response(status=404)
            return web.Response(status=200)
        return web.Response(status=400, text="action is save or remove")

    async def schedule(self, request: web.Request) -> web.Response:
        if request.query.get("action") == "remove":
            self.device.remove_schedule(request.query.get("input", ""),
                                        request.query.get("param", ""))
            return web.Response(status=200)
        return web.json_response(self.device.schedules)

    async def schedule_save(self, request: web.Request) -> web.Response:
        try:
            entry = await request.json()
        except json.JSONDecodeError:
            return web.Response(status=400, text="a JSON schedule entry is expected")
        problem = invalid_entry(entry)
        if problem is not None:
            return web.Response(status=400, text=problem)
        entry.setdefault("param", "")
        self.device.save_schedule(entry)
        return web.Response(status=200)

    async def restart(self, request: web.Request) -> web.Response:
        asyncio.get_running_loop().call_later(0.2, self.device.restart)
        return bha()

    async def sip(self, request: web.Request) -> web.Response:
        query = request.query
        action = query.get("action")
        sip = self.device.sip
        if action == "status":
            return bha(SIP=[{
                "ENABLE": str(sip["enable"]), "PROXY": sip["url"], "USER": sip["user"],
                "MIC_VOLUME": str(sip["mic_volume"]), "SPK_VOLUME": str(sip["spk_volume"]),
                "DTMF": str(sip["dtmf"]), "INCOMING_CALL_ENABLE": str(sip["incoming_call_enable"]),
                "INCOMING_CALL_USER": sip["incoming_call_user"], "ANC": str(sip["anc"]),
                "RING_TIME_LIMIT": str(sip["ring_time_limit"]),
                "CALL_TIME_LIMIT": str(sip["call_time_limit"]),
                "LASTERRORCODE": "0", "LASTERRORTEXT": "",
            }])
        if action == "settings":
            updates: dict[str, Any] = {}
            for name, (low, high) in SIP_RANGES.items():
                if name in query:
                    try:
                        value = int(query[name])
                    except ValueError:
                        return bha("0", ERROR=f"{name} is a number")
                    if not low <= value <= high:
                        return bha("0", ERROR=f"{name} takes {low}..{high}")
                    updates[name] = value
            if "incoming_call_user" in query:
                updates["incoming_call_user"] = query["incoming_call_user"]
            sip.update(updates)
            return bha()
        if action == "registration":
            for name in ("user", "password", "url"):
                if name in query:
                    sip[name] = query[name]
            return bha()
        if action in ("makecall", "hangup", "reset"):
            if action == "makecall" and not query.get("url"):
                return bha("0", ERROR="url is required")
            if action == "reset":
                sip.clear()
                sip.update(SIP_DEFAULTS)
            return bha()
        return bha("0", ERROR="unknown action")

    # ------------------------------------------------------------------ control hooks
    async def sim_ring(self, request: web.Request) -> web.Response:
        try:
            doorbell = int(request.query.get("n", "1"))
        except ValueError:
            return web.Response(status=400, text="n is a doorbell number")
        await self.device.ring(doorbell)
        return web.json_response({"ok": True, "sent_at": self.device.packets_sent_at})

    async def sim_motion(self, request: web.Request) -> web.Response:
        await self.device.motion()
        return web.json_response({"ok": True})

    async def sim_offline(self, request: web.Request) -> web.Response:
        self.device.go_offline()
        return web.json_response({"ok": True})

    async def sim_online(self, request: web.Request) -> web.Response:
        self.device.offline = False
        return web.json_response({"ok": True})

    async def sim_busy(self, request: web.Request) -> web.Response:
        seconds = float(request.query.get("seconds", "5"))
        self.device.busy_until = time.monotonic() + seconds
        return web.json_response({"ok": True})

    async def sim_faults(self, request: web.Request) -> web.Response:
        """``/_sim/faults`` (see bridge/simulators/faults.py)."""
        offline = bool(self.device.faults.get("offline"))
        answer = await self.device.faults.handle(request)
        if self.device.faults.get("offline") and not offline:
            self.device.go_offline()  # its streams end too
            self.device.offline = False  # back as soon as the fault clears
        for listener in tuple(self.device.fault_listeners):
            listener()
        return answer

    async def sim_audio(self, request: web.Request) -> web.Response:
        """What audio-transmit.cgi received (the last minute), as µ-law."""
        return web.Response(body=self.device.recorded_audio(), content_type="audio/basic")

    async def sim_state(self, request: web.Request) -> web.Response:
        return web.json_response({**self.device.snapshot(), "rtsp_port": self.rtsp_port,
                                  "rtsp_http_port": self.rtsp_http_port})


def _reserve_port(host: str, port: int, name: str) -> socket.socket:
    """Binds ``port`` (without listening, so connections are refused) to keep it for the
    station's stream; a port that cannot be bound (taken, or privileged) gives way to a free
    one, so that the simulator runs anywhere."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
    except OSError as exc:
        try:
            sock.bind((*address[:1], 0, *address[2:]))
        except OSError:
            sock.close()
            raise
        log.info("port unavailable, using a free one", stream=name, wanted=port,
                 port=sock.getsockname()[1], reason=exc.strerror)
    return sock


def _monitor_part(line: str) -> bytes:
    return f"--ioboundary\r\nContent-Type: text/plain\r\n\r\n{line}\r\n\r\n".encode()


def _parse_digest(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in _split_header(value):
        key, _, raw = part.strip().partition("=")
        fields[key.strip().lower()] = raw.strip().strip('"')
    return fields


def _split_header(value: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts

