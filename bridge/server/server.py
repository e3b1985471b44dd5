"""The WebSocket server: version hello, schema negotiation, dispatch through the catalog, and
fan-out of driver events and log records to the connections that asked for them."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import structlog
from websockets import http11
from websockets.datastructures import Headers

from bridge.driver import Driver, DriverEvent
from bridge.driver.driver import PULSE_EVENTS, HttpHandler
from bridge.driver.errors import (
    BridgeError,
    SchemaIncompatible,
    StationConnectionTimeout,
    UnknownCommand,
)
from bridge.logs import LogRecord, hub
from bridge.server import shaping
from bridge.server.access import Access, Refusal, is_loopback, shown
from bridge.server.commands import Handler, Request, Result, handler_for
from bridge.server.connection import Connection, Streamed
from bridge.server.jsonio import dumps, loads
from bridge.server.live_http import LiveHttp
from bridge.server.operations import Metrics, health
from bridge.server.session import Session
from bridge.server.validation import validate_params
from bridge.tasks import foreign_cancellation
from schemas import CommandSpec

log = structlog.get_logger(component="bridge.server")

CATALOG = shaping.CATALOG
OPEN_ROUTES = frozenset({"/healthz", "/metrics"})
"""Served to any ``Host``: container health checks and scrapers use whatever name they know."""
_MISSING: Any = object()


class BridgeServer:
    """Serves one :class:`Driver` to any number of eufy-security-ws clients."""

    def __init__(
        self,
        driver: Driver,
        *,
        host: str,
        port: int,
        driver_version: str,
        server_version: str,
        command_timeout: float = 15.0,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 30.0,
        send_buffer_limit: int = 16 * 1024 * 1024,
        max_message_size: int = 1024 * 1024,
        max_connections: int = 256,
        max_in_flight: int = 64,
        handshake_timeout: float = 10.0,
        access: Access | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.driver = driver
        self.host = host
        self.port = port
        self.driver_version = driver_version
        self.server_version = server_version
        self.command_timeout = command_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.send_buffer_limit = send_buffer_limit
        self.max_message_size = max_message_size
        self.max_connections = max_connections
        self.max_in_flight = max_in_flight
        self.handshake_timeout = handshake_timeout
        self.access = access or Access()
        self.tls = tls
        self.connections: set[Connection] = set()
        self._admitted: set[Connection] = set()
        self._full = False
        self.command_counts: Counter[tuple[str, str]] = Counter()
        self.events_sent = 0
        self.dropped_events = 0
        metrics = self.metrics = Metrics(self)
        page = resources.files("bridge.server").joinpath("page.html").read_bytes()
        self.http_routes: dict[str, HttpHandler] = {
            "/": lambda path, query: (200, "text/html", page),
            "/healthz": lambda path, query: health(self),
            "/metrics": lambda path, query: metrics.render(),
        }
        """GET routes. Those for browsers (all but :data:`OPEN_ROUTES`) are only served to a
        ``Host`` that DNS rebinding cannot forge."""
        self.action_routes: dict[str, HttpHandler] = {}
        """POST routes that change something: for browsers too, and they need the token."""
        self.live = LiveHttp(driver)
        """``GET /live/<serial>.mp4`` and ``.jpg``: for browsers and players, with the token."""
        self._server: asyncio.Server | None = None
        self._unsubscribe: list[Any] = []
        self._hello = dumps({
            "type": "version",
            "driverVersion": driver_version,
            "serverVersion": server_version,
            "minSchemaVersion": CATALOG.min_schema,
            "maxSchemaVersion": CATALOG.max_schema,
        })

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), self.host, self.port, ssl=self.tls,
            ssl_handshake_timeout=self.handshake_timeout if self.tls else None)
        sockets = self._server.sockets
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]
        self._unsubscribe = [self.driver.bus.subscribe(self._on_event),
                             hub.add_listener(self._on_log)]
        log.info("listening", host=self.host, port=self.port, tls=self.tls is not None,
                 token=self.access.token_required)
        if not is_loopback(self.host) and not self.access.token_required:
            log.warning("listening beyond loopback without server.auth_token: anyone who can "
                        "reach this port can unlock doors, change passcodes and reboot "
                        "stations; set a token", host=self.host)

    async def stop(self, grace: float = 2.0) -> None:
        """Answer the commands still running (``unknown_error``), send ``shutdown`` to schema
        10+ connections, then close every connection cleanly."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._server is not None:
            self._server.close()  # no new connections
        self.live.close()
        shutdown = dumps({"type": "event", "event": {"source": "server", "event": "shutdown"}})
        closing = list(self.connections)
        await asyncio.sleep(0)  # commands received just now start, so that they can answer
        commands = [task for conn in closing for task in conn.session.cancel()]
        if commands:  # each answers unknown_error as it ends, before its connection closes
            await asyncio.wait(commands, timeout=grace / 2)
        for conn in closing:
            if CATALOG.event("server", "shutdown").available_at(conn.session.schema):
                conn.send(shutdown)
            conn.close(1001, "server shutting down")
        if closing:
            _, pending = await asyncio.wait([c.lost for c in closing], timeout=grace)
            for conn in closing:
                if not conn.lost.done() and conn.transport is not None:
                    conn.transport.abort()
            if pending:
                log.warning("connections did not close in time", count=len(pending))
        if self._server is not None:
            await self._server.wait_closed()
        log.info("server closed")

    # ------------------------------------------------------------------ connections
    def admit(self, conn: Connection) -> bool:
        """Count a new connection; False when the cap is reached (it is then answered 503)."""
        if len(self._admitted) >= self.max_connections:
            if not self._full:
                log.warning("connection limit reached, refusing more",
                            limit=self.max_connections)
            self._full = True
            return False
        self._full = False
        self._admitted.add(conn)
        return True

    def welcome(self, conn: Connection) -> None:
        """A WebSocket handshake completed: say hello."""
        self.connections.add(conn)
        log.debug("client connected", peer=conn.peer)
        conn.send(self._hello)

    def http_response(self, conn: Connection,
                      request: http11.Request) -> http11.Response | Streamed | None:
        """The answer to a request that is not an accepted WebSocket handshake: a refusal
        (connection cap, token, origin, host), a page or a registered route (the bridge's
        own, then the backends'). None lets the WebSocket handshake go on (which answers
        426 Upgrade Required to plain HTTP elsewhere)."""
        if conn not in self._admitted:
            return _plain(503, "text/plain", b"too many connections", [("Retry-After", "5")])
        url = urlsplit(request.path)
        if "websocket" in request.headers.get("Upgrade", "").lower():
            refusal = self.access.check(request, host=False, token=True)
            return None if refusal is None else self._refuse(conn, request, url.path, refusal)
        if url.path.startswith("/live/") and request.method == "GET":
            # what browsers load, that shows a camera: a Host no rebinding forges, the token
            refusal = self.access.check(request, host=True, token=True)
            if refusal is not None:
                return self._refuse(conn, request, url.path, refusal)
            answer = self.live.respond(url.path)
            return answer or _plain(404, "text/plain", b"no such camera")
        handler, kind = self._route(request.method, url.path)
        if handler is None:
            return None if kind is None else _plain(
                405, "text/plain", b"method not allowed", [("Allow", kind)])
        refusal = self.access.check(request, host=kind in ("page", "action"),
                                    token=kind == "action")
        if refusal is not None:
            return self._refuse(conn, request, url.path, refusal)
        query = dict(parse_qsl(url.query))
        try:
            status, content_type, body = handler(url.path, query)
        except Exception:
            log.exception("HTTP route failed", path=url.path[:120])
            status, content_type, body = 500, "text/plain", b"internal error"
        headers = []
        if content_type.startswith("text/html"):
            # only the bridge's own pages may frame it; the page's URL may hold the token
            headers = [("Content-Security-Policy", "frame-ancestors 'self'"),
                       ("X-Frame-Options", "SAMEORIGIN"), ("Referrer-Policy", "no-referrer")]
        return _plain(status, content_type, body, headers)

    def _route(self, method: str, path: str) -> tuple[HttpHandler | None, str | None]:
        """The handler for ``path`` and what kind of route it is: "vendor" (the backends'
        callbacks), "open" (health and metrics), "page" (for browsers) or "action". A route
        that exists for another method comes back without a handler, with the method it
        takes as its kind; nothing at all is (None, None)."""
        page = _lookup(self.http_routes, path)
        action = _lookup(self.action_routes, path)
        if page is None and action is None:
            vendor = _lookup(self.driver.http_routes, path)
            return (vendor, "vendor") if vendor is not None else (None, None)
        if method == "POST" and action is not None:
            return action, "action"
        if method == "GET" and page is not None:
            return page, "open" if path in OPEN_ROUTES else "page"
        return None, "GET" if page is not None else "POST"

    def _refuse(self, conn: Connection, request: http11.Request, path: str,
                refusal: Refusal) -> http11.Response:
        """Log who was refused and why (never the token, nor the query that may hold it)."""
        headers = request.headers
        log.warning("request refused", peer=conn.peer, reason=refusal.reason,
                    status=refusal.status, path=shown(path), origin=shown(headers.get("Origin")),
                    host=shown(headers.get("Host")))
        extra = [("WWW-Authenticate", "Bearer")] if refusal.status == 401 else []
        return _plain(refusal.status, "text/plain", refusal.reason.encode(), extra)

    def forget(self, conn: Connection) -> None:
        self._admitted.discard(conn)
        if conn in self.connections:
            self.connections.discard(conn)
            self.dropped_events += conn.dropped_events
            log.debug("client disconnected", peer=conn.peer)

    def on_message(self, conn: Connection, raw: bytes) -> bool:
        """Handle one frame; False when it is not JSON (the connection is then closed).

        Every message that parses is answered exactly once: here when the answer is at hand
        (queries, refusals), by :meth:`_finish` when it waits for a backend.
        """
        try:
            message = loads(raw)
        except ValueError:
            log.debug("unparsable message", peer=conn.peer, size=len(raw))
            return False
        if type(message) is not dict:
            self._fail(conn, _MISSING, None, UnknownCommand.code)
            return True
        session = conn.session
        message_id = message.get("messageId", _MISSING)
        spec: CommandSpec | None = None
        try:
            spec = self._gate(session, message)
            outcome = self._dispatch(session, spec, message)
        except BridgeError as error:
            self._log_failure(conn, message, error)
            self._fail(conn, message_id, spec, error.code)
            return True
        except Exception:
            log.exception("command failed unexpectedly", command=message.get("command"))
            self._fail(conn, message_id, spec, "unknown_error")
            return True
        if type(outcome) is dict:
            self._succeed(conn, message_id, spec, outcome)
        else:
            session.spawn(self._finish(conn, message, spec, outcome), releases=outcome)
        return True

    @staticmethod
    def _gate(session: Session, message: dict[str, Any]) -> CommandSpec:
        """Schema gating comes first: outside its range a command does not exist."""
        name = message.get("command")
        spec = _COMMANDS_AT[session.schema].get(name) if type(name) is str else None
        if spec is None:
            raise UnknownCommand(f"unknown command {name!r} at schema {session.schema}")
        return spec

    def _dispatch(
        self, session: Session, spec: CommandSpec, message: dict[str, Any]
    ) -> Result | Awaitable[Result]:
        name = spec.name
        if name == "set_api_schema":
            return self._set_api_schema(session, message.get("schemaVersion"))
        if name == "start_listening":
            state = shaping.dump_state(self.driver, session.schema, self.driver_version)
            session.listening = True
            return {"state": state}
        route = _ROUTES.get(name)
        if route is None:
            route = _ROUTES[name] = (handler_for(spec), spec.target)
        handler, target_kind = route
        params = validate_params(spec, message) if spec.params else {}
        target = None
        if target_kind == "station":
            target = self.driver.station(params["serialNumber"])
        elif target_kind == "device":
            target = self.driver.device(params["serialNumber"])
        return handler(Request(session, spec, params, target))

    @staticmethod
    def _set_api_schema(session: Session, version: Any) -> Result:
        """A rejected version leaves the connection's schema as it was."""
        if isinstance(version, float) and version.is_integer():
            version = int(version)
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or not CATALOG.min_schema <= version <= CATALOG.max_schema
        ):
            raise SchemaIncompatible(f"schema {version!r} is not supported")
        session.schema = version
        return {}

    async def _finish(
        self,
        conn: Connection,
        message: dict[str, Any],
        spec: CommandSpec,
        outcome: Awaitable[Result],
    ) -> None:
        """Answer a command that waits for a backend: exactly once, whatever happens below.

        A ``CancelledError`` that is not this task's own (aiohttp raises one into a request
        whose session is closed under it) is a failure of the command like any other. The
        task's own cancellation means the connection went (nobody is left to answer) or the
        server shuts down: the client is answered ``unknown_error`` and the cancellation goes
        on.
        """
        message_id = message.get("messageId", _MISSING)
        try:
            async with asyncio.timeout(self.command_timeout):
                result = await outcome
        except TimeoutError:
            log.warning("command timed out", command=spec.name, seconds=self.command_timeout)
            code = StationConnectionTimeout.code if spec.target in ("station", "device") \
                else "unknown_error"
        except BridgeError as error:
            self._log_failure(conn, message, error)
            code = error.code
        except asyncio.CancelledError:
            if not foreign_cancellation():
                self._fail(conn, message_id, spec, "unknown_error")
                raise
            log.warning("command cancelled by something below it", command=spec.name,
                        peer=conn.peer)
            code = "unknown_error"
        except Exception:
            log.exception("command failed unexpectedly", command=spec.name)
            code = "unknown_error"
        else:
            self._succeed(conn, message_id, spec, result)
            return
        self._fail(conn, message_id, spec, code)

    def _succeed(self, conn: Connection, message_id: Any, spec: CommandSpec,
                 result: Result) -> None:
        """Send a success, or ``unknown_error`` when the result cannot be sent (a bug)."""
        try:
            text = _success(message_id, self._shape_result(spec, conn.session.schema, result))
        except Exception:
            log.exception("result could not be serialised", command=spec.name)
            self._fail(conn, message_id, spec, "unknown_error")
            return
        self.command_counts[(spec.name, "success")] += 1
        conn.send(text)

    def _fail(self, conn: Connection, message_id: Any, spec: CommandSpec | None,
              code: str) -> None:
        self.command_counts[(spec.name if spec else "(unknown)", code)] += 1
        conn.send(_failure(message_id, code))

    @staticmethod
    def _shape_result(spec: CommandSpec, schema: int, data: Result) -> Result:
        """The result fields the catalog lists for this schema; ``async`` ones are true."""
        key = (spec.name, schema)
        fields = _RESULT_FIELDS.get(key)
        if fields is None:
            fields = _RESULT_FIELDS[key] = tuple(
                (field.name, field.is_async) for field in spec.result if field.present_at(schema))
        out: Result = {}
        for name, is_async in fields:
            if is_async:
                out[name] = True
            elif name in data:
                out[name] = data[name]
        return out

    @staticmethod
    def _log_failure(conn: Connection, message: dict[str, Any], error: BridgeError) -> None:
        log.debug("command refused", peer=conn.peer, command=message.get("command"),
                 code=error.code, reason=error.detail)

    # ------------------------------------------------------------------ fan-out
    def _on_event(self, event: DriverEvent) -> None:
        if event.event not in PULSE_EVENTS:  # the fan-out times of rings, motion, persons
            self._fan_out(event, lambda session: session.listening)
            return
        began = time.perf_counter()
        self._fan_out(event, lambda session: session.listening)
        # every copy's write was scheduled by now, and callbacks run in order: this one runs
        # once the last copy has been handed to its socket
        asyncio.get_running_loop().call_soon(
            lambda: self.metrics.fanout.observe(time.perf_counter() - began))

    def _on_log(self, record: LogRecord) -> None:
        self._fan_out(DriverEvent("driver", "logging", {"message": record}),
                      lambda session: session.logs)

    def _fan_out(self, event: DriverEvent, wants: Callable[[Session], bool]) -> None:
        """Shape the event once per schema in use, then queue it for every connection that
        wants it."""
        by_schema: dict[int, bytes | None] = {}
        for conn in self.connections:
            session = conn.session
            if not wants(session):
                continue
            schema = session.schema
            if schema not in by_schema:
                shaped = shaping.shape_event(event, schema, self.driver_version)
                by_schema[schema] = None if shaped is None else dumps(shaped)
            text = by_schema[schema]
            if text is not None and conn.send_event(text):
                self.events_sent += 1


def _lookup(routes: dict[str, HttpHandler], path: str) -> HttpHandler | None:
    """An exact route, else the longest prefix route (one ending in "/") ``path`` is under."""
    exact = routes.get(path)
    if exact is not None:
        return exact
    prefix = max((p for p in routes if len(p) > 1 and p.endswith("/") and path.startswith(p)),
                 key=len, default=None)
    return None if prefix is None else routes[prefix]


def _plain(status: int, content_type: str, body: bytes,
           extra: list[tuple[str, str]] | None = None) -> http11.Response:
    if content_type.startswith("text/") and "charset" not in content_type:
        content_type += "; charset=utf-8"
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                       ("Connection", "close"), *(extra or [])])
    return http11.Response(status, HTTPStatus(status).phrase, headers, body)


_COMMANDS_AT = [
    {name: spec for name, spec in CATALOG.commands.items() if spec.available_at(schema)}
    for schema in range(CATALOG.max_schema + 1)
]
"""The commands that exist at each schema, by name."""

_ROUTES: dict[str, tuple[Handler, str]] = {}
"""Each command's handler and target, found once."""
_RESULT_FIELDS: dict[tuple[str, int], tuple[tuple[str, bool], ...]] = {}
"""Each command's result fields at each schema, found once: (name, is async)."""


def _success(message_id: Any, result: Result) -> bytes:
    if message_id is _MISSING:
        return dumps({"type": "result", "success": True, "result": result})
    return dumps({"type": "result", "success": True, "messageId": message_id, "result": result})


def _failure(message_id: Any, code: str) -> bytes:
    if message_id is _MISSING:
        return dumps({"type": "result", "success": False, "errorCode": code})
    return dumps({"type": "result", "success": False, "messageId": message_id, "errorCode": code})
