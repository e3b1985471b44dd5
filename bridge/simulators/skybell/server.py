"""The simulated SkyBell cloud's HTTP API (``/api/v5/``), media URLs and control hooks."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import structlog
from aiohttp import web

from bridge.simulators.faults import Faults, http_faults
from bridge.simulators.skybell.cloud import (
    TRIGGER_EVENTS,
    CloudConfig,
    SimDevice,
    SkyBellCloud,
    Trigger,
)
from bridge.simulators.skybell.kvs import KinesisSignalling
from bridge.simulators.skybell.settings import CHIME_FILES, SettingError
from bridge.webapp import serve

log = structlog.get_logger(component="simulator.skybell")

API = "/api/v5"
OPEN_PATHS = {f"{API}/login", f"{API}/token", f"{API}/health", f"{API}/tones/featured",
              f"{API}/tones/chime"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ok(data: Any = None, message: str = "OK", status: int = 200) -> web.Response:
    return web.json_response({"error": False, "message": message, "data": data}, status=status)


def fail(status: int, message: str, data: Any = None) -> web.Response:
    return web.json_response({"error": True, "message": message, "data": data}, status=status)


class SkyBellSimulator:
    """The SkyBell cloud on loopback."""

    def __init__(self, config: CloudConfig | None = None) -> None:
        self.config = config or CloudConfig()
        self.cloud = SkyBellCloud(self.config)
        self._runner: web.AppRunner | None = None
        self.port = self.config.port
        self.locations: list[dict[str, Any]] = []
        self.kvs = KinesisSignalling(self.cloud, self.cloud.faults, self.config.host)
        self.cloud.offline_listeners.append(lambda device: self.kvs.went_offline(
            device.device_id))

    @property
    def faults(self) -> Faults:
        """Trouble to switch on (``POST /_sim/faults``, ``--fault``)."""
        return self.cloud.faults

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    def describe(self) -> list[str]:
        """How to use it, for people (the API key is the simulator's own)."""
        lines = [f"api key {self.cloud.api_key}; login {self.config.email} / "
                 f"{self.config.password}"]
        for device in self.cloud.devices.values():
            base = f"{self.url}/_sim/devices/{device.device_id}"
            lines.append(f"{device.name} ({device.serial}, {device.ip_address}): "
                         f"curl -X POST {base}/ring")
        return lines

    async def start(self) -> None:
        app = web.Application(middlewares=[
            self._count, http_faults(self.cloud.faults, lambda r: r.path.startswith(API)),
            self._auth])
        app.on_response_prepare.append(self._date)
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/login", self.login), ("PUT", "/token", self.token),
            ("GET", "/logout", self.logout), ("GET", "/user", self.user),
            ("GET", "/health", self.health),
            ("GET", "/devices", self.devices), ("GET", "/devices/{device_id}", self.device),
            ("POST", "/devices/{device_id}/settings", self.settings),
            ("PATCH", "/devices/{device_id}/settings", self.settings),
            ("GET", "/devices/{device_id}/snapshot", self.snapshot),
            ("POST", "/devices/{device_id}/videostream", self.stream_start),
            ("DELETE", "/devices/{device_id}/videostream", self.stream_end),
            ("POST", "/devices/{device_id}/reboot", self.reboot),
            ("GET", "/devices/{device_id}/triggers", self.triggers),
            ("POST", "/devices/{device_id}/triggers", self.trigger_create),
            ("DELETE", "/devices/{device_id}/triggers/{trigger_id}", self.trigger_delete),
            ("POST", "/devices/{device_id}/tones/test", self.tone_test),
            ("POST", "/devices/{device_id}/tones", self.tone_set),
            ("GET", "/tones/featured", self.tones_featured),
            ("GET", "/tones/chime", self.tones_chime),
            ("GET", "/activity", self.activities), ("GET", "/activities", self.activities),
            ("DELETE", "/activity", self.activities_delete_day),
            ("DELETE", "/activities", self.activities_delete_day),
            ("GET", "/activity/days", self.activity_days),
            ("GET", "/activity/{activity_id}/video", self.activity_video),
            ("DELETE", "/activity/{activity_id}", self.activity_delete),
            ("DELETE", "/activities/{activity_id}", self.activity_delete),
            ("GET", "/locations", self.locations_list),
            ("POST", "/locations", self.location_create),
        ]
        for method, path, handler in routes:
            for variant in (f"{API}{path}", f"{API}{path}/"):
                app.router.add_route(method, variant, handler)
        app.router.add_get("/_media/{activity_id}.mp4", self.media)
        for action in ("ring", "motion", "person", "offline", "online", "telemetry"):
            app.router.add_post(f"/_sim/devices/{{device_id}}/{action}", self.sim_action)
        app.router.add_post("/_sim/expire-tokens", self.sim_expire)
        app.router.add_post("/_sim/fail", self.sim_fail)
        app.router.add_get("/_sim/state", self.sim_state)
        app.router.add_get("/_sim/faults", self.sim_faults)
        app.router.add_post("/_sim/faults", self.sim_faults)
        app.router.add_get("/_sim/devices/{device_id}/live", self.sim_live)
        for path in ("/_kvs", "/_kvs/"):
            app.router.add_get(path, self.kvs.connect)
        await self.kvs.start()
        if self.config.tls is None:
            self._runner, self.port = await serve(app, self.config.host, self.config.port)
        else:
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                         shutdown_timeout=1.0)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.config.host, self.config.port,
                              ssl_context=self.config.tls).start()
            self.port = int(self._runner.addresses[0][1])
        self.cloud.base_url = self.url
        await self.cloud.start()
        log.info("SkyBell simulator listening", url=self.url, devices=len(self.cloud.devices))

    async def stop(self) -> None:
        await self.kvs.stop()
        await self.cloud.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ middlewares
    async def _date(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer's ``Date`` is by the cloud's clock, set back or ahead with it."""
        response.headers["Date"] = formatdate(self.cloud.clock(), usegmt=True)

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(API):
            self.cloud.requests += 1
            if self.cloud.failures:  # injected trouble: 5xx answers or no answer at all
                status = self.cloud.failures.pop(0)
                if status == 0:
                    if request.transport is not None:
                        request.transport.abort()
                    raise web.HTTPServiceUnavailable()
                return fail(status, "injected failure")
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if not path.startswith(API) or path in OPEN_PATHS:
            return await handler(request)
        key = request.headers.get("x-skybell-user-api-key")
        if key is not None:
            if secrets.compare_digest(key, self.cloud.api_key) \
                    and not self.cloud.faults.get("api_key_revoked"):
                return await handler(request)
            return fail(401, "Invalid API key")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.cloud.token_valid(token):
            return fail(401, "Unauthorized: missing, expired or revoked token")
        if not request.headers.get("x-skybell-app"):
            return fail(400, "x-skybell-app header is required with a JWT")
        return await handler(request)

    # ------------------------------------------------------------------ helpers
    def _device(self, request: web.Request) -> SimDevice:
        device = self.cloud.devices.get(request.match_info["device_id"])
        if device is None:
            raise web.HTTPNotFound(text=json.dumps({"error": True, "message":
                                                    "Device not found"}),
                                   content_type="application/json")
        return device

    def _reachable(self, device: SimDevice) -> web.Response | None:
        if not device.online:
            return fail(599, "Device did not respond")
        return None

    async def _json(self, request: web.Request) -> Any:
        if not request.can_read_body:
            return {}
        try:
            return await request.json()
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text=json.dumps({"error": True, "message":
                                                      "Body is not JSON"}),
                                     content_type="application/json") from None

    # ------------------------------------------------------------------ auth
    async def login(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        result = self.cloud.login(str(body.get("username", "")), str(body.get("password", "")))
        if result is None:
            return fail(401, "Incorrect username or password")
        return ok(result)

    async def token(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        result = self.cloud.refresh(str(body.get("refresh_token", "")))
        if result is None:
            return fail(401, "Invalid refresh token")
        return ok(result, "Refreshed")

    async def logout(self, request: web.Request) -> web.Response:
        self.cloud.logout()
        return ok(None)

    async def user(self, request: web.Request) -> web.Response:
        """The seed's keys (``account_id``, premium status) and the recorded answer's
        (``user_since``, ``eula_accepted``, ``user_mobile_settings``); no ``user_id``."""
        return ok({"account_id": self.cloud.account_id, "email": self.config.email,
                   "fname": "Demo", "lname": "User", "user_since": "2024-01-01T00:00:00.000Z",
                   "eula_accepted": "2024-01-01T00:00:00.000Z", "user_mobile_settings": {},
                   "premium_status": "free", "premium": {"renewing": None, "term": None,
                                                        "started_at": None, "ended_at": None}})

    async def health(self, request: web.Request) -> web.Response:
        return ok({"status": "healthy", "version": "5.12.0", "uptime": int(time.monotonic())})

    # ------------------------------------------------------------------ devices
    async def devices(self, request: web.Request) -> web.Response:
        limit, offset = _page(request, 50)
        rows = [d.detail() for d in self.cloud.devices.values()]
        return ok({"count": len(rows), "rows": rows[offset:offset + limit], "limit": limit,
                   "offset": offset})

    async def device(self, request: web.Request) -> web.Response:
        return ok(self._device(request).detail())

    async def settings(self, request: web.Request) -> web.Response:
        """Only the keys sent change; the answer is the whole settings object.  A refused
        update changes nothing and answers 400 with the envelope of the real cloud's refusals
        recorded in aioskybellgen's test fixtures: ``error`` true, the reason in ``message``
        and an empty ``data`` object."""
        device = self._device(request)
        try:
            settings = self.cloud.update_settings(device, await self._json(request))
        except SettingError as exc:
            return fail(400, str(exc), {})
        return ok(settings)

    async def snapshot(self, request: web.Request) -> web.Response:
        device = self._device(request)
        if (offline := self._reachable(device)) is not None:
            return offline
        jpeg = self.cloud.snapshot(device)
        return ok({"date_time": datetime.now(UTC).isoformat(timespec="milliseconds")
                   .replace("+00:00", "Z"), "preview": base64.b64encode(jpeg).decode()})

    async def stream_start(self, request: web.Request) -> web.Response:
        """Start a live view: it leaves an "lstream" activity.  The answer is 201, as
        recorded; ``signed`` (the seed's and the recorded answers' list of the two endpoints'
        signing inputs) comes besides ``signedWSS`` and ``signedHTTPS``."""
        device = self._device(request)
        body = await self._json(request)
        if not (isinstance(body, dict) and body.get("force")) \
                and (offline := self._reachable(device)) is not None:
            return offline
        device.streaming = True
        self.cloud.event(device, "lstream")
        ws = "wss" + self.url.removeprefix("https") if self.config.tls \
            else "ws" + self.url.removeprefix("http")
        return ok(self.kvs.issue(device, f"{self.url}/_kvs", f"{ws}/_kvs"), status=201)

    async def stream_end(self, request: web.Request) -> web.Response:
        device = self._device(request)
        device.streaming = False
        await self.kvs.end(device.device_id)
        return ok(False, "Ended stream")

    async def reboot(self, request: web.Request) -> web.Response:
        device = self._device(request)
        if (offline := self._reachable(device)) is not None:
            return offline
        self.cloud.reboot(device)
        return ok({}, "OK, sent reboot command.")

    # ------------------------------------------------------------------ triggers
    async def triggers(self, request: web.Request) -> web.Response:
        device = self._device(request)
        return ok([t.as_json() for t in self.cloud.triggers.values()
                   if t.device_id == device.device_id])

    async def trigger_create(self, request: web.Request) -> web.Response:
        device = self._device(request)
        body = await self._json(request)
        if body.get("type") != "webhook":
            return fail(400, "type must be webhook")
        url, method = body.get("url"), body.get("method", "post")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return fail(400, "url must be an http(s) URL")
        if method not in ("get", "post"):
            return fail(400, "method must be get or post")
        events = body.get("events") or sorted(TRIGGER_EVENTS)
        if not isinstance(events, list) or not set(events) <= TRIGGER_EVENTS:
            return fail(400, f"events may only contain {', '.join(sorted(TRIGGER_EVENTS))}")
        trigger = Trigger(str(uuid.uuid4()), device.device_id, self.cloud.account_id, url,
                          method, list(events), body.get("header_name"),
                          body.get("header_value"))
        self.cloud.triggers[trigger.trigger_id] = trigger
        return ok(trigger.as_json(), "Webhook trigger created.")

    async def trigger_delete(self, request: web.Request) -> web.Response:
        self._device(request)
        if self.cloud.triggers.pop(request.match_info["trigger_id"], None) is None:
            return fail(404, "Trigger not found")
        return ok(True, "OK - trigger deleted")

    # ------------------------------------------------------------------ tones
    async def tone_test(self, request: web.Request) -> web.Response:
        device = self._device(request)
        body = await self._json(request)
        # an empty chime_file is the doorbell's own tone, the seed's default "1.wav"
        name = body.get("file_name", device.settings["chime_file"] or "1.wav")
        if name not in CHIME_FILES:
            return fail(400, f"file_name must be one of {', '.join(CHIME_FILES)}")
        if (offline := self._reachable(device)) is not None:
            return offline
        device.tones_played.append(name)
        return ok(False, "Tested tone")

    async def tone_set(self, request: web.Request) -> web.Response:
        """The seed's ``tone_type`` and ``tone_file``; the device's ``tones`` then show the
        file as the recorded answers do (``button``, ``motion``, ``test``)."""
        device = self._device(request)
        body = await self._json(request)
        kind, file = body.get("tone_type"), body.get("tone_file")
        if kind not in ("test", "button", "doorbell", "motion"):
            return fail(400, "tone_type must be test, button, doorbell or motion")
        if not isinstance(file, str) or not file or len(file) > 200:
            return fail(400, "tone_file must be the file of a listed tone")
        slot = "button" if kind == "doorbell" else kind
        device.settings["tones"][slot] = {
            "file": file, "last_updated": datetime.now(UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")}
        return ok(False, "Custom tone set")

    async def tones_featured(self, request: web.Request) -> web.Response:
        return ok([{"url": f"{self.url}/_media/tones/{name}", "size": 200_000,
                    "modified": "2024-01-01T00:00:00.000Z"} for name in CHIME_FILES[1:]],
                  "Currently featured tones")

    async def tones_chime(self, request: web.Request) -> web.Response:
        return ok([{"url": f"{self.url}/_media/tones/{name}", "size": 200_000,
                    "modified": "2024-01-01T00:00:00.000Z"} for name in CHIME_FILES[1:]],
                  "Current tones for chime")

    # ------------------------------------------------------------------ activities
    async def activities(self, request: web.Request) -> web.Response:
        query = request.query
        limit, offset = _page(request, 500)
        rows = sorted(self.cloud.activities, key=lambda a: a["event_time"], reverse=True)
        device = query.get("device_id") or query.get("device")
        if device:
            rows = [a for a in rows if a["device_id"] == device]
        if query.get("type"):
            if query["type"] not in ("lstream", "doorbell", "motion", "sound"):
                return fail(400, "type is lstream, doorbell, motion or sound")
            rows = [a for a in rows if a["event_type"] == query["type"]]
        try:
            start = int(query["start"]) if "start" in query else None
            end = int(query["end"]) if "end" in query else None
        except ValueError:
            return fail(400, "start and end are JS timestamps")
        if start is not None:
            rows = [a for a in rows if a["event_time"] >= start]
        if end is not None:
            rows = [a for a in rows if a["event_time"] <= end]
        page = [dict(a) for a in rows[offset:offset + limit]]
        images = query.get("nopreviews") not in ("true", "1")
        if not images:  # the recorded answers keep the key, empty
            for row in page:
                row["image"] = None
        return ok({"count": len(rows), "start": start, "end": end, "limit": limit,
                   "offset": offset, "imagesIncluded": images, "rows": page})

    async def activity_days(self, request: web.Request) -> web.Response:
        days: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for activity in sorted(self.cloud.activities, key=lambda a: -a["event_time"]):
            days[activity["date"]].append({k: activity[k] for k in (
                "activity_id", "device_id", "device_name", "event_type", "event_time")})
        return ok({"count": len(self.cloud.activities), "days": days})

    async def activity_video(self, request: web.Request) -> web.Response:
        activity_id = request.match_info["activity_id"]
        activity = next((a for a in self.cloud.activities if a["activity_id"] == activity_id),
                        None)
        if activity is None:
            return fail(404, "Activity not found")
        if not activity["video_ready"]:
            return fail(404, "Video not ready")
        return ok({"download_url": self.cloud.video_url(activity_id)})

    async def activity_delete(self, request: web.Request) -> web.Response:
        activity_id = request.match_info["activity_id"]
        before = len(self.cloud.activities)
        self.cloud.activities = [a for a in self.cloud.activities
                                 if a["activity_id"] != activity_id]
        if len(self.cloud.activities) == before:
            return fail(404, "Activity not found")
        return ok(True)

    async def activities_delete_day(self, request: web.Request) -> web.Response:
        day = request.query.get("day", "")
        try:
            datetime.strptime(day, "%m/%d/%Y")
        except ValueError:
            return fail(400, "day is MM/DD/YYYY")
        self.cloud.activities = [a for a in self.cloud.activities if a["date"] != day]
        return ok(True)

    async def media(self, request: web.Request) -> web.Response:
        grant = self.cloud.videos.get(request.query.get("Signature", ""))
        if grant is None or grant[0] != request.match_info["activity_id"] \
                or time.time() > grant[1]:
            return web.Response(status=403, text="AccessDenied: the URL expired")
        return web.Response(body=await self.cloud.video(), content_type="video/mp4")

    # ------------------------------------------------------------------ locations
    async def locations_list(self, request: web.Request) -> web.Response:
        return ok({"count": len(self.locations), "rows": self.locations})

    async def location_create(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        name = (body.get("building_information") or {}).get("name")
        if not name:
            return fail(400, "building_information.name is required")
        if len(self.locations) >= 5:
            return fail(400, "at most 5 locations")
        location = {"id": str(uuid.uuid4()), "owner_account_id": self.cloud.account_id,
                    "detail": body, "device_ids": [],
                    "created_at": datetime.now(UTC).isoformat(), "updated_at":
                    datetime.now(UTC).isoformat()}
        self.locations.append(location)
        return ok(location, "Location created.")

    # ------------------------------------------------------------------ control hooks
    async def sim_action(self, request: web.Request) -> web.Response:
        device = self._device(request)
        action = request.path.rsplit("/", 1)[1]
        if action in ("offline", "online"):
            self.cloud.set_online(device, action == "online")
            return web.json_response({"ok": True})
        if action == "telemetry":
            if "signal_level" in request.query:
                device.signal_level = int(request.query["signal_level"])
            if "ip_address" in request.query:  # the doorbell moved on the LAN
                device.lan_address = request.query["ip_address"]
            self.cloud.telemetry(device)
            return web.json_response({"ok": True})
        kind = "doorbell" if action == "ring" else "motion"
        activity = self.cloud.event(device, kind, person=action == "person")
        return web.json_response({"ok": True, "activity_id": activity["activity_id"],
                                  "sent_at": device.packet_sent_at})

    async def sim_expire(self, request: web.Request) -> web.Response:
        self.cloud.expire_tokens()
        return web.json_response({"ok": True})

    async def sim_fail(self, request: web.Request) -> web.Response:
        """The next ``count`` API calls answer ``status`` (0: the connection drops)."""
        status = int(request.query.get("status", "503"))
        self.cloud.failures.extend([status] * int(request.query.get("count", "1")))
        return web.json_response({"ok": True})

    async def sim_faults(self, request: web.Request) -> web.Response:
        """``/_sim/faults`` (see bridge/simulators/faults.py); revoking or expiring tokens
        takes effect when it is switched on, ``offline`` both ways."""
        faults = self.cloud.faults
        before = {name: bool(faults.get(name)) for name in ("tokens_revoked", "tokens_expired",
                                                            "offline")}
        answer = await faults.handle(request)
        if faults.get("tokens_revoked") and not before["tokens_revoked"]:
            self.cloud.revoke_tokens()
        if faults.get("tokens_expired") and not before["tokens_expired"]:
            self.cloud.expire_tokens()
        if bool(faults.get("offline")) != before["offline"]:
            for device in self.cloud.devices.values():
                self.cloud.set_online(device, not faults.get("offline"))
        return answer

    async def sim_live(self, request: web.Request) -> web.Response:
        return web.json_response(self.kvs.stats(self._device(request).device_id))

    async def sim_state(self, request: web.Request) -> web.Response:
        return web.json_response({
            "devices": {d.device_id: {"name": d.name, "serial": d.serial, "online": d.online,
                                      "ip_address": d.ip_address, "reboots": d.reboots,
                                      "tones": d.tones_played} for d in
                        self.cloud.devices.values()},
            "activities": len(self.cloud.activities), "triggers": len(self.cloud.triggers),
            "logins": self.cloud.logins, "refreshes": self.cloud.refreshes,
            "webhook_deliveries": self.cloud.webhook_deliveries,
        })


def _page(request: web.Request, default_limit: int) -> tuple[int, int]:
    try:
        limit = int(request.query.get("limit", default_limit))
        offset = int(request.query.get("offset", 0))
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"error": True, "message":
                                                  "limit and offset are numbers"}),
                                 content_type="application/json") from None
    return max(0, min(limit, 1000)), max(0, offset)
