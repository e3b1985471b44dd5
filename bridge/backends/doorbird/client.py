"""An HTTP client for one DoorBird's LAN API, careful with the device.

DoorBird stations lock a user out after repeated wrong credentials (423), answer 503 while the
line is busy and 509 when every monitor stream is taken, and accept about one new connection
per second.  The client keeps connections alive, spaces new ones at least a second apart,
retries busy answers a few times with back-off, and turns every other answer into a typed
error so that the backend can react (and never retries into a lock-out).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aiohttp
import orjson
import structlog

from bridge.tasks import InFlight, foreign_cancellation

log = structlog.get_logger(component="backend.doorbird")


class DoorBirdError(Exception):
    """Anything the device would not do."""


class AuthFailed(DoorBirdError):
    """401: wrong user name or password (retrying would lead to a lock-out)."""


class LockedOut(DoorBirdError):
    """423: too many wrong attempts; the device refuses everyone for a while."""


class Busy(DoorBirdError):
    """503 or 509 after the retries: the line or every stream slot is taken."""


class Garbled(DoorBirdError):
    """The station failed (5xx) or answered something that is not its API: its fault, not
    the request's, so it is reported as a station that did not answer."""


class NoPermission(DoorBirdError):
    """204: the user may not watch now (no "watch always", no recent ring)."""


class Unreachable(DoorBirdError):
    """No answer: connection refused or reset, or a timeout."""


class Refused(DoorBirdError):
    """Any other 4xx/5xx, or a RETURNCODE other than 1."""


class DoorBirdClient:
    """The LAN API of one station."""

    def __init__(self, host: str, username: str, password: str, *, timeout: float = 10.0,
                 connection_interval: float = 1.0, busy_retries: int = 3,
                 busy_backoff: float = 0.5) -> None:
        self.address = host if ":" in host else f"{host}:80"
        self.host = self.address.rsplit(":", 1)[0]
        self.base = f"http://{self.address}"
        self.username = username
        self._password = password
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._timeout = timeout
        self._interval = connection_interval
        self._busy_retries = busy_retries
        self._busy_backoff = busy_backoff
        self._next_connection = 0.0
        self._connection_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._in_flight = InFlight()
        self.requests = 0
        self.errors = 0

    @property
    def password(self) -> str:
        return self._password

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            # a stopped backend's late request must not open a session nobody closes
            raise Unreachable(f"{self.address}: the client is closed")
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_start.append(self._pace_new_connection)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit_per_host=4, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                              sock_read=self._timeout),
                trace_configs=[trace],
                headers={"Authorization": self._auth},
            )
        return self._session

    async def _pace_new_connection(self, *_: Any) -> None:
        """Never more than one new connection per ``connection_interval``."""
        async with self._connection_lock:
            wait = self._next_connection - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_connection = time.monotonic() + self._interval

    def open(self) -> None:
        """Accept requests again after :meth:`close` (a backend started anew)."""
        self._closed = False

    async def close(self) -> None:
        """Refuse new requests and end those in flight with :class:`Unreachable`."""
        self._closed = True
        self._in_flight.cancel_all()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # ------------------------------------------------------------------ plumbing
    async def _request(self, path: str, params: dict[str, Any] | None = None, *,
                       method: str = "GET", json: Any = None,
                       ) -> tuple[int, Any, bytes]:
        """Status, headers and body of one call; typed errors for everything but success."""
        url = f"{self.base}/bha-api/{path}"
        for attempt in range(self._busy_retries + 1):
            self.requests += 1
            try:
                status, headers, body = await self._in_flight.run(
                    self._exchange(method, url, params, json))
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                    TimeoutError) as exc:
                self.errors += 1
                raise Unreachable(f"{self.address}: {type(exc).__name__}") from None
            except asyncio.CancelledError:
                if not foreign_cancellation():
                    raise
                self.errors += 1
                raise Unreachable(f"{self.address}: the session was closed") from None
            if status >= 400:
                self.errors += 1
            if status in (503, 509) and attempt < self._busy_retries:
                await asyncio.sleep(self._busy_backoff * 2 ** attempt)
                continue
            return self._check(status, headers, body, path)
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, url: str, params: dict[str, Any] | None,
                        json: Any) -> tuple[int, Any, bytes]:
        async with self._http().request(
                method, url, params=params,
                data=orjson.dumps(json) if json is not None else None,
                headers={"Content-Type": "application/json"} if json is not None
                else None) as response:
            return response.status, response.headers, await response.read()

    def _check(self, status: int, headers: Any, body: bytes, path: str
               ) -> tuple[int, Any, bytes]:
        if status == 401:
            raise AuthFailed(f"{self.address}: wrong user name or password")
        if status == 423:
            raise LockedOut(f"{self.address}: locked out after wrong credentials")
        if status in (503, 509):
            raise Busy(f"{self.address}: busy ({status})")
        if status == 204:
            raise NoPermission(f"{self.address}: no permission for {path} now")
        if status >= 500:
            raise Garbled(f"{self.address}: {path} failed with {status}")
        if status >= 400:
            raise Refused(f"{self.address}: {path} answered {status}")
        return status, headers, body

    async def _bha(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        _, _, body = await self._request(path, params)
        try:
            data = orjson.loads(body)["BHA"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise Garbled(f"{self.address}: {path} answered no BHA envelope") from None
        if str(data.get("RETURNCODE")) != "1":
            raise Refused(f"{self.address}: {path} answered RETURNCODE "
                          f"{data.get('RETURNCODE')}")
        return data

    # ------------------------------------------------------------------ the API
    async def info(self) -> dict[str, Any]:
        return (await self._bha("info.cgi"))["VERSION"][0]

    async def session(self) -> tuple[str, str]:
        """A session id (valid 10 minutes) and the notification encryption key."""
        data = await self._bha("getsession.cgi")
        return data["SESSIONID"], data["NOTIFICATION_ENCRYPTION_KEY"]

    async def invalidate(self, session: str) -> None:
        await self._bha("getsession.cgi", {"invalidate": session})

    async def open_door(self, relay: str) -> None:
        await self._bha("open-door.cgi", {"r": relay})

    async def light_on(self) -> None:
        await self._bha("light-on.cgi")

    async def image(self) -> bytes:
        return (await self._request("image.cgi"))[2]

    async def history_image(self, index: int, event: str) -> tuple[bytes, float | None]:
        """A history picture and when it was taken (from ``Last-Modified``), if known."""
        _, headers, body = await self._request("history.cgi", {"index": index, "event": event})
        stamp = headers.get("Last-Modified")
        moment = email.utils.parsedate_to_datetime(stamp).timestamp() if stamp else None
        return body, moment

    async def restart(self) -> None:
        await self._request("restart.cgi")

    async def sip_status(self) -> dict[str, str]:
        return (await self._bha("sip.cgi", {"action": "status"}))["SIP"][0]

    async def sip_settings(self, **values: Any) -> None:
        await self._bha("sip.cgi", {"action": "settings", **{k: str(v) for k, v in
                                                               values.items()}})

    async def favorites(self) -> dict[str, dict[str, dict[str, str]]]:
        return orjson.loads((await self._request("favorites.cgi"))[2])

    async def save_favorite(self, kind: str, title: str, value: str,
                            fav_id: str | None = None) -> None:
        params = {"action": "save", "type": kind, "title": title, "value": value}
        if fav_id is not None:
            params["id"] = fav_id
        await self._request("favorites.cgi", params)

    async def remove_favorite(self, kind: str, fav_id: str) -> None:
        await self._request("favorites.cgi", {"action": "remove", "type": kind, "id": fav_id})

    async def schedules(self) -> list[dict[str, Any]]:
        return orjson.loads((await self._request("schedule.cgi"))[2])

    async def save_schedule(self, entry: dict[str, Any]) -> None:
        await self._request("schedule.cgi", method="POST", json=entry)

    async def remove_schedule(self, input_: str, param: str) -> None:
        await self._request("schedule.cgi", {"action": "remove", "input": input_,
                                             "param": param})

    @contextlib.asynccontextmanager
    async def live(self, path: str, session: str, *, read_timeout: float = 10.0
                   ) -> AsyncIterator[aiohttp.StreamReader]:
        """The body of a live stream (``video.cgi``, ``audio-receive.cgi``), authorised by a
        session id; 204 (outside the live-view window) and 509 (every stream taken) are
        raised at once, never retried: the client waiting for its picture must hear why."""
        url = f"{self.base}/bha-api/{path}"
        self.requests += 1
        try:
            async with self._http().get(url, params={"sessionid": session},
                                        timeout=aiohttp.ClientTimeout(
                                            total=None, sock_connect=self._timeout,
                                            sock_read=read_timeout)) as response:
                if response.status != 200:
                    self.errors += 1
                self._check(response.status, response.headers, b"", path)
                yield response.content
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                TimeoutError) as exc:
            self.errors += 1
            raise Unreachable(f"{self.address}: {path}: {type(exc).__name__}") from None

    async def transmit(self, session: str, audio: AsyncIterable[bytes]) -> None:
        """POST ``audio`` (G.711 µ-law, 8 kHz) to the loudspeaker as one request for as long
        as ``audio`` lasts.  The station reads such a request as HTTP/1.0 does: a length far
        beyond any talk, no chunked framing; the talk ends by closing the connection, so this
        returns only when the station ends it, and is cancelled otherwise."""
        url = f"{self.base}/bha-api/audio-transmit.cgi"
        self.requests += 1
        try:
            async with self._http().post(
                    url, params={"sessionid": session}, data=audio,
                    headers={"Content-Type": "audio/basic", "Content-Length": "9999999",
                             "Cache-Control": "no-cache"},
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout,
                                                  sock_read=None)) as response:
                if response.status == 503:  # another client transmits: never retried
                    self.errors += 1
                    raise Busy(f"{self.address}: someone else talks through the station")
                if response.status != 200:
                    self.errors += 1
                self._check(response.status, response.headers, b"", "audio-transmit.cgi")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                TimeoutError) as exc:
            self.errors += 1
            raise Unreachable(f"{self.address}: audio-transmit.cgi: "
                              f"{type(exc).__name__}") from None

    async def monitor(self, events: str = "doorbell,motionsensor") -> AsyncIterator[str]:
        """The lines (``doorbell:H``...) of one monitor stream, until it ends."""
        url = f"{self.base}/bha-api/monitor.cgi"
        try:
            async with self._http().get(url, params={"ring": events},
                                        timeout=aiohttp.ClientTimeout(
                                            total=None, sock_connect=self._timeout,
                                            sock_read=45)) as response:
                self._check(response.status, response.headers, b"", "monitor.cgi")
                async for raw in response.content:
                    line = raw.decode("ascii", "replace").strip()
                    if ":" in line and not line.lower().startswith("content-"):
                        yield line
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                TimeoutError) as exc:
            raise Unreachable(f"{self.address}: monitor stream: {type(exc).__name__}") from None
        except asyncio.CancelledError:
            if not foreign_cancellation():
                raise
            raise Unreachable(f"{self.address}: monitor stream: the session was closed") from None
