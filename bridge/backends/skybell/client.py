"""The SkyBell cloud API v5 for one account: authentication, retries and typed errors.

An API key is used as is.  With an e-mail address and password the client logs in once, keeps
the tokens in the data directory (so a restart does not log in again), refreshes them before
they expire, and logs in again at most once when the cloud still answers 401.  Tokens never
reach a log line.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import structlog

from bridge.storage import StateStore
from bridge.tasks import InFlight, foreign_cancellation

log = structlog.get_logger(component="backend.skybell")

APP_VERSION = "eufy-bridge"
REFRESH_MARGIN = 120.0  # seconds before expiry


class SkyBellError(Exception):
    """Anything the cloud would not do."""


class AuthFailed(SkyBellError):
    """401 even after a refresh and a fresh login, or wrong credentials."""


class DeviceOffline(SkyBellError):
    """599: the doorbell did not answer the cloud within 30 seconds."""


class CloudUnavailable(SkyBellError):
    """5xx or no answer, after the retries."""


class CloudRefused(SkyBellError):
    """4xx: the cloud's message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class SkyBellClient:
    """One account's session with the cloud."""

    def __init__(self, base_url: str, *, api_key: str | None = None, email: str | None = None,
                 password: str | None = None, store: StateStore | None = None,
                 state_name: str = "skybell", retries: int = 3, backoff: float = 0.5,
                 timeout: float = 40.0) -> None:
        self.base = base_url.rstrip("/") + "/api/v5"
        self._api_key = api_key
        self._email = email
        self._password = password
        self._store = store
        self._state_name = state_name
        self._retries = retries
        self._backoff = backoff
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._in_flight = InFlight()
        self._tokens: dict[str, Any] = {}
        self._auth_lock = asyncio.Lock()
        self.logins = 0
        self.requests = 0
        self.errors = 0
        self.clock_offset_ms = 0
        """The cloud's clock less ours, from the last answer's ``Date`` (whole seconds):
        activity times are the cloud's, LAN packets are timed by ours."""

    # ------------------------------------------------------------------ session
    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            # a stopped backend's late request must not open a session nobody closes
            raise CloudUnavailable("the client is closed")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    def open(self) -> None:
        """Accept requests again after :meth:`close` (a backend started anew)."""
        self._closed = False

    async def close(self) -> None:
        """Refuse new requests and end those in flight with :class:`CloudUnavailable`."""
        self._closed = True
        self._in_flight.cancel_all()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ------------------------------------------------------------------ tokens
    def load_tokens(self) -> None:
        if self._store is not None and self._api_key is None:
            self._tokens = self._store.load(self._state_name).get("tokens", {})

    def _save_tokens(self) -> None:
        if self._store is not None:
            state = self._store.load(self._state_name)
            state["tokens"] = self._tokens
            self._store.save(self._state_name, state)

    def _token_fresh(self) -> bool:
        return bool(self._tokens.get("id_token")) and \
            float(self._tokens.get("expires_at", 0)) - time.time() > REFRESH_MARGIN

    async def _headers(self) -> dict[str, str]:
        if self._api_key is not None:
            return {"x-skybell-user-api-key": self._api_key}
        async with self._auth_lock:
            if not self._token_fresh():
                await self._renew()
        return {"Authorization": f"Bearer {self._tokens['id_token']}",
                "x-skybell-app": APP_VERSION}

    async def _renew(self, *, force_login: bool = False) -> None:
        """Refresh with the refresh token; log in when there is none or it is refused."""
        refresh = self._tokens.get("refresh_token")
        if refresh and not force_login:
            try:
                data = await self._call("PUT", "/token/", json={"refresh_token": refresh},
                                        auth=False)
                self._store_tokens(data, refresh)
                return
            except CloudRefused as exc:
                log.info("token refresh refused, logging in again", status=exc.status)
        await self.login()

    async def login(self) -> None:
        if not (self._email and self._password):
            raise AuthFailed("no API key and no e-mail and password")
        try:
            data = await self._call("POST", "/login/", json={
                "username": self._email, "password": self._password}, auth=False)
        except CloudRefused as exc:
            raise AuthFailed(f"login refused ({exc.status}): {exc.message}") from None
        self.logins += 1
        result = data["AuthenticationResult"]
        self._store_tokens(result, result.get("RefreshToken"))
        log.info("logged in to the SkyBell cloud")

    def _store_tokens(self, result: dict[str, Any], refresh: str | None) -> None:
        self._tokens = {
            "id_token": result["IdToken"], "access_token": result.get("AccessToken"),
            "refresh_token": refresh, "expires_at": time.time() + float(result["ExpiresIn"]),
        }
        self._save_tokens()

    async def logout(self) -> None:
        if self._api_key is None and self._tokens:
            await self.request("GET", "/logout/")
            self._tokens = {}
            self._save_tokens()

    # ------------------------------------------------------------------ requests
    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None) -> Any:
        """The ``data`` of one call.  401: renew and retry once, then AuthFailed."""
        try:
            return await self._call(method, path, params=params, json=json)
        except CloudRefused as exc:
            if exc.status != 401 or self._api_key is not None:
                if exc.status == 401:
                    raise AuthFailed("the API key was refused") from None
                raise
        async with self._auth_lock:
            try:
                await self._renew()
            except CloudRefused:
                await self._renew(force_login=True)
        try:
            return await self._call(method, path, params=params, json=json)
        except CloudRefused as exc:
            if exc.status == 401:
                raise AuthFailed("the cloud refuses the account's tokens") from None
            raise

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    json: Any = None, auth: bool = True) -> Any:
        url = self.base + path
        for attempt in range(self._retries + 1):
            headers = await self._headers() if auth else {}
            self.requests += 1
            try:
                status, body = await self._in_flight.run(
                    self._exchange(method, url, params, json, headers))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.errors += 1
                if attempt < self._retries:
                    await asyncio.sleep(self._backoff * 2 ** attempt)
                    continue
                raise CloudUnavailable(f"{method} {path}: {type(exc).__name__}") from None
            except asyncio.CancelledError:
                if not foreign_cancellation():
                    raise
                self.errors += 1
                raise CloudUnavailable(f"{method} {path}: the session was closed") from None
            message = body.get("message", "") if isinstance(body, dict) else ""
            if status >= 400:
                self.errors += 1
            if status == 599:
                raise DeviceOffline(message or "the doorbell did not answer")
            if status >= 500:
                if attempt < self._retries:
                    await asyncio.sleep(self._backoff * 2 ** attempt)
                    continue
                raise CloudUnavailable(f"{method} {path}: {status} {message}")
            if status >= 400:
                raise CloudRefused(status, message or "refused")
            if not isinstance(body, dict):  # garbled or cut off: the cloud's fault, not ours
                self.errors += 1
                if attempt < self._retries:
                    await asyncio.sleep(self._backoff * 2 ** attempt)
                    continue
                raise CloudUnavailable(f"{method} {path}: the answer is not the cloud's JSON")
            return body.get("data")
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, url: str, params: dict[str, Any] | None,
                        json: Any, headers: dict[str, str]) -> tuple[int, Any]:
        async with self._http().request(method, url, params=params, json=json,
                                        headers=headers) as response:
            self._note_clock(response.headers.get("Date"))
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, None

    def _note_clock(self, date: str | None) -> None:
        if not date:
            return
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError, OverflowError):
            return  # no usable Date: the last offset stands
        cloud = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        self.clock_offset_ms = round((cloud - time.time()) * 1000)

    def cloud_now_ms(self) -> int:
        """Now, by the cloud's clock."""
        return int(time.time() * 1000) + self.clock_offset_ms

    # ------------------------------------------------------------------ the API
    async def devices(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            page = await self.request("GET", "/devices/", params={"limit": 50,
                                                                  "offset": len(rows)})
            rows.extend(page.get("rows", []))
            if len(rows) >= int(page.get("count", 0)) or not page.get("rows"):
                return rows

    async def device(self, device_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/devices/{device_id}/")

    async def update_settings(self, device_id: str, changes: dict[str, Any]) -> Any:
        """Send only ``changes``; the real cloud answers the whole settings object (the
        seed's example answers ``{}``)."""
        return await self.request("POST", f"/devices/{device_id}/settings/", json=changes)

    async def snapshot(self, device_id: str) -> str:
        return (await self.request("GET", f"/devices/{device_id}/snapshot/"))["preview"]

    async def reboot(self, device_id: str) -> None:
        await self.request("POST", f"/devices/{device_id}/reboot/")

    async def test_tone(self, device_id: str, file_name: str) -> None:
        await self.request("POST", f"/devices/{device_id}/tones/test/",
                           json={"file_name": file_name})

    async def activities(self, **query: Any) -> list[dict[str, Any]]:
        """Every activity matching the query (all pages), newest first."""
        rows: list[dict[str, Any]] = []
        while True:
            page = await self.request("GET", "/activity", params={
                **{k: str(v) for k, v in query.items() if v is not None},
                "limit": 500, "offset": len(rows)})
            rows.extend(page.get("rows", []))
            if len(rows) >= int(page.get("count", 0)) or not page.get("rows"):
                return rows

    async def fetch_clip(self, url: str, limit: int) -> bytes | None:
        """The MP4 at a clip's download address (another host: no credentials go there);
        None when the address has lapsed (403 or 410), CloudRefused when the clip is larger
        than ``limit`` bytes or missing."""
        try:
            async with self._http().get(url) as response:
                if response.status in (403, 410):
                    return None
                if response.status != 200:
                    raise CloudRefused(response.status, "the clip could not be downloaded")
                if (response.content_length or 0) > limit:
                    raise CloudRefused(413, "the clip is too large")
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise CloudRefused(413, "the clip is too large")
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CloudUnavailable(f"clip download: {type(exc).__name__}") from None

    async def delete_activity(self, activity_id: str) -> None:
        await self.request("DELETE", f"/activity/{activity_id}")

    async def start_live_view(self, device_id: str) -> dict[str, Any]:
        """Ask the doorbell for a live view: the answer holds the signalling channel
        (``channelARN``, ``signedWSS``, ``ice`` servers, temporary ``credentials``)."""
        return await self.request("POST", f"/devices/{device_id}/videostream/", json={})

    async def end_live_view(self, device_id: str) -> None:
        """End the doorbell's live view (the cloud answers the same whether one ran or not)."""
        await self.request("DELETE", f"/devices/{device_id}/videostream/")

    async def clip_url(self, video_path: str) -> str:
        """The short-lived download address of an activity's clip; ``video_path`` is the
        activity's ``video_url`` (``/activity/<id>/video``), relative to the API base."""
        answer = await self.request("GET", video_path)
        if not isinstance(answer, dict) or not isinstance(answer.get("download_url"), str):
            raise CloudRefused(502, "the clip answer carries no download_url")
        return answer["download_url"]

    async def triggers(self, device_id: str) -> list[dict[str, Any]]:
        return await self.request("GET", f"/devices/{device_id}/triggers")

    async def create_trigger(self, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", f"/devices/{device_id}/triggers", json=body)

    async def delete_trigger(self, device_id: str, trigger_id: str) -> None:
        await self.request("DELETE", f"/devices/{device_id}/triggers/{trigger_id}")
