"""The RTSP 1.0 server side of one connection, without I/O (RFC 2326).

Bytes from the player go in (:meth:`ServerConnection.receive_data`); answers come out
(:meth:`ServerConnection.data_to_send`) together with events for what the application must
do: start sending media (:class:`PlayRequested`, answered with :meth:`accept_play` or
:meth:`refuse`), stop it (:class:`Paused`, :class:`SessionEnded`).  Time is passed in, so
idle sessions expire (:meth:`expire`) by whatever clock the caller keeps.

What a player may make the server hold is bounded: the size of a request head and body, and
the number of sessions on one connection.  A request that breaks those bounds, or that cannot
be parsed, is answered and the connection is to be closed (:attr:`closing`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from bridge.media.rtsp import sdp
from bridge.media.rtsp.source import Track

REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 413: "Request Entity Too Large", 453: "Not Enough Bandwidth",
    454: "Session Not Found", 455: "Method Not Valid in This State",
    459: "Aggregate Operation Not Allowed", 461: "Unsupported Transport",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "RTSP Version Not Supported",
}
METHODS = ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER",
           "SET_PARAMETER")


@dataclass(slots=True)
class Request:
    """One parsed request.  ``path`` excludes a ``/trackID=<n>`` suffix, which is ``track``."""

    method: str
    uri: str
    headers: dict[str, str]
    body: bytes
    cseq: str
    path: str
    query: dict[str, list[str]]
    track: int | None

    @property
    def session_id(self) -> str | None:
        value = self.headers.get("session")
        return value.split(";", 1)[0].strip() if value else None

    def basic_credentials(self) -> tuple[str, str] | None:
        """User and password of a Basic ``Authorization`` header."""
        kind, _, token = self.headers.get("authorization", "").partition(" ")
        if kind.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, colon, password = decoded.partition(":")
        return (user, password) if colon else None


@dataclass(slots=True)
class TrackTransport:
    """How one track of a session reaches its player: interleaved channels on this connection
    (``channels``) or UDP to ``client_ports`` of the player's address."""

    track: int
    url: str
    channels: tuple[int, int] | None = None
    client_ports: tuple[int, int] | None = None


@dataclass(eq=False, slots=True)
class Session:
    id: str
    path: str
    base: str
    timeout: float
    last_seen: float
    transports: dict[int, TrackTransport] = field(default_factory=dict)
    playing: bool = False


@dataclass(frozen=True, slots=True)
class PlayRequested:
    """Start (or resume) sending a session's tracks; answer with ``accept_play``/``refuse``."""

    request: Request
    session: Session


@dataclass(frozen=True, slots=True)
class Paused:
    session: Session


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over (``reason``: ``teardown``, ``timeout`` or ``closed``)."""

    session: Session
    reason: str


@dataclass(frozen=True, slots=True)
class ClientPacket:
    """An interleaved RTCP (or other) packet from the player; it counts as a sign of life."""

    channel: int
    data: bytes


Event = PlayRequested | Paused | SessionEnded | ClientPacket


class Refused(Exception):
    """Raised by an ``authorize`` check (or the server's ``admit`` hook) to answer a request
    with ``status`` rather than 401: the player is known but may not do this now (a closed
    permission window, every stream slot taken)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ProtocolError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def split_track(path: str, query: str) -> tuple[str, str, int | None]:
    """The stream path, query and track of a request URL.  A ``trackID=<n>`` is found at the
    end of the path, or at the end of the query for players that appended it there."""
    for part in ("path", "query"):
        text = path if part == "path" else query
        head, slash, tail = text.rpartition("/")
        if slash and tail.startswith("trackID=") and tail[8:].isdigit():
            if part == "path":
                return head or "/", query, int(tail[8:])
            return path, head, int(tail[8:])
    return path.rstrip("/") or "/", query, None


def _parse_transport(value: str) -> list[dict[str, str]]:
    specs: list[dict[str, str]] = []
    for option in value.split(","):
        fields = [f.strip() for f in option.split(";") if f.strip()]
        if not fields:
            continue
        spec = {"protocol": fields[0].upper()}
        for parameter in fields[1:]:
            name, _, argument = parameter.partition("=")
            spec[name.strip().lower()] = argument.strip()
        specs.append(spec)
    return specs


def _port_pair(text: str) -> tuple[int, int] | None:
    first, _, second = text.partition("-")
    try:
        low = int(first)
        high = int(second) if second else low + 1
    except ValueError:
        return None
    if not (0 <= low <= 0xFFFF and 0 <= high <= 0xFFFF):
        return None
    return low, high


class ServerConnection:
    """One player's RTSP connection (see the module documentation).

    ``describe(path)`` gives the tracks of a path, or None when nothing is served there.
    ``authorize(request)`` decides whether a request may proceed (401 otherwise, or the status
    of a :class:`Refused` it raises); OPTIONS is always allowed, as players send it before they
    know what authentication is asked.
    ``udp_ports``: the server's RTP and RTCP ports, or None when UDP is not offered.
    """

    def __init__(self, *, describe: Callable[[str], Sequence[Track] | None],
                 authorize: Callable[[Request], bool] = lambda request: True,
                 realm: str = "eufy-bridge", udp_ports: tuple[int, int] | None = None,
                 session_timeout: float = 60.0, max_sessions: int = 4,
                 max_head: int = 8192, max_body: int = 4096, now: float = 0.0,
                 name: str = "eufy-bridge") -> None:
        self._describe = describe
        self._authorize = authorize
        self.realm = realm
        self.udp_ports = udp_ports
        self.session_timeout = session_timeout
        self.max_sessions = max_sessions
        self.max_head = max_head
        self.max_body = max_body
        self.name = name
        self.sessions: dict[str, Session] = {}
        self.closing = False
        self._now = now
        self._buffer = bytearray()
        self._out: list[bytes] = []

    # -- bytes in, bytes out --------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Parse what the player sent; complete requests are answered or become events."""
        self._now = now
        if self.closing:
            return []
        self._buffer += data
        events: list[Event] = []
        while self._buffer and not self.closing:
            if self._buffer[0] == 0x24:  # "$": an interleaved binary packet
                if len(self._buffer) < 4:
                    break
                length = int.from_bytes(self._buffer[2:4], "big")
                if len(self._buffer) < 4 + length:
                    break
                channel = self._buffer[1]
                packet = bytes(self._buffer[4:4 + length])
                del self._buffer[:4 + length]
                self._touch_channel(channel)
                events.append(ClientPacket(channel, packet))
                continue
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self.max_head:
                    self._fail(400, "")
                break
            if end > self.max_head:
                self._fail(400, "")
                break
            try:
                request, consumed = self._parse(end)
            except ProtocolError as error:
                self._fail(error.status, self._cseq_of(self._buffer[:end]))
                break
            if request is None:
                break
            del self._buffer[:consumed]
            events.extend(self._handle(request))
        return events

    def expire(self, now: float) -> list[Event]:
        """End sessions nobody has shown a sign of life for within their timeout."""
        self._now = now
        ended = [s for s in self.sessions.values() if now - s.last_seen > s.timeout]
        for session in ended:
            del self.sessions[session.id]
        return [SessionEnded(session, "timeout") for session in ended]

    def connection_lost(self) -> list[Event]:
        """The connection is gone: every session on it ends."""
        self.closing = True
        ended = list(self.sessions.values())
        self.sessions.clear()
        return [SessionEnded(session, "closed") for session in ended]

    def touch(self, session: Session, now: float) -> None:
        """A sign of life from the player outside this connection (RTCP over UDP)."""
        session.last_seen = now

    # -- answers the application gives -------------------------------------------------------

    def accept_play(self, request: Request, session: Session) -> None:
        if self.sessions.get(session.id) is not session:
            self._respond(request, 454)
            return
        session.playing = True
        self._respond(request, 200, {"Session": self._session_header(session),
                                     "Range": "npt=0.000-"})

    def refuse(self, request: Request, status: int) -> None:
        self._respond(request, status)

    # -- parsing --------------------------------------------------------------------------

    @staticmethod
    def _cseq_of(head: bytes | bytearray) -> str:
        for line in bytes(head).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"cseq":
                return value.strip().decode("latin-1")
        return ""

    def _parse(self, end: int) -> tuple[Request | None, int]:
        try:
            head = bytes(self._buffer[:end]).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(400) from None
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise ProtocolError(400)
        method, uri, version = parts
        if version != "RTSP/1.0":
            raise ProtocolError(505)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(400)
            headers[name.strip().lower()] = value.strip()
        if "cseq" not in headers:
            raise ProtocolError(400)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ProtocolError(400) from None
        if not 0 <= length <= self.max_body:
            raise ProtocolError(413)
        if len(self._buffer) < end + 4 + length:
            return None, 0
        body = bytes(self._buffer[end + 4:end + 4 + length])
        if uri == "*":
            path, query, track = "*", "", None
        else:
            url = urlsplit(uri)
            if url.scheme and url.scheme.lower() not in ("rtsp", "rtspt"):
                raise ProtocolError(400)
            path, query, track = split_track(unquote(url.path) or "/", url.query)
        request = Request(method=method.upper(), uri=uri, headers=headers, body=body,
                          cseq=headers["cseq"], path=path, query=parse_qs(query), track=track)
        return request, end + 4 + length

    # -- answering ------------------------------------------------------------------------

    def _fail(self, status: int, cseq: str) -> None:
        lines = [f"RTSP/1.0 {status} {REASONS[status]}"]
        if cseq:
            lines.append(f"CSeq: {cseq}")
        lines.extend([f"Server: {self.name}", "Connection: close", "", ""])
        self._out.append("\r\n".join(lines).encode())
        self._buffer.clear()
        self.closing = True

    def _respond(self, request: Request, status: int, headers: dict[str, str] | None = None,
                 body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {status} {REASONS[status]}", f"CSeq: {request.cseq}",
                 f"Server: {self.name}"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self._out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _session_header(self, session: Session) -> str:
        return f"{session.id};timeout={round(session.timeout)}"

    def _touch_channel(self, channel: int) -> None:
        for session in self.sessions.values():
            if any(t.channels and channel in t.channels for t in session.transports.values()):
                session.last_seen = self._now

    def _session(self, request: Request) -> Session | None:
        session_id = request.session_id
        session = self.sessions.get(session_id) if session_id else None
        if session is not None:
            session.last_seen = self._now
        return session

    def _handle(self, request: Request) -> list[Event]:
        if request.method == "OPTIONS":
            self._session(request)
            self._respond(request, 200, {"Public": ", ".join(METHODS)})
            return []
        if request.method not in METHODS:
            status = 405 if request.method in ("ANNOUNCE", "RECORD", "REDIRECT") else 501
            self._respond(request, status, {"Allow": ", ".join(METHODS)})
            return []
        try:
            allowed = self._authorize(request)
        except Refused as refusal:
            self._respond(request, refusal.status)
            return []
        if not allowed:
            self._respond(request, 401,
                          {"WWW-Authenticate": f'Basic realm="{self.realm}"'})
            return []
        return getattr(self, "_on_" + request.method.lower())(request)

    def _on_describe(self, request: Request) -> list[Event]:
        tracks = self._describe(request.path)
        if tracks is None or request.track is not None:
            self._respond(request, 404)
            return []
        base = request.uri
        body = sdp.describe(tracks, base, session_id=secrets.randbits(31), name=self.name)
        self._respond(request, 200, {"Content-Type": "application/sdp",
                                     "Content-Base": base}, body)
        return []

    def _on_setup(self, request: Request) -> list[Event]:
        tracks = self._describe(request.path)
        if tracks is None:
            self._respond(request, 404)
            return []
        track = request.track
        if track is None and len(tracks) == 1:
            track = 0
        if track is None or not 0 <= track < len(tracks):
            self._respond(request, 404)
            return []
        session = None
        if request.session_id is not None:
            session = self._session(request)
            if session is None:
                self._respond(request, 454)
                return []
            if session.path != request.path:
                self._respond(request, 459)
                return []
            if session.playing:
                self._respond(request, 455, {"Allow": "PLAY, PAUSE, TEARDOWN, GET_PARAMETER"})
                return []
        elif len(self.sessions) >= self.max_sessions:
            self._respond(request, 453)
            return []
        transport = self._choose_transport(request, track, session)
        if transport is None:
            self._respond(request, 461)
            return []
        if session is None:
            session = Session(id=secrets.token_hex(8), path=request.path,
                              base=request.uri, timeout=self.session_timeout,
                              last_seen=self._now)
            self.sessions[session.id] = session
        session.transports[track] = transport
        if transport.channels is not None:
            reply = f"RTP/AVP/TCP;unicast;interleaved={transport.channels[0]}-" \
                    f"{transport.channels[1]}"
        else:
            assert transport.client_ports is not None and self.udp_ports is not None
            reply = (f"RTP/AVP;unicast;client_port={transport.client_ports[0]}-"
                     f"{transport.client_ports[1]};server_port={self.udp_ports[0]}-"
                     f"{self.udp_ports[1]}")
        self._respond(request, 200, {"Transport": reply,
                                     "Session": self._session_header(session)})
        return []

    def _choose_transport(self, request: Request, track: int,
                          session: Session | None) -> TrackTransport | None:
        for spec in _parse_transport(request.headers.get("transport", "")):
            if "multicast" in spec or spec.get("mode", "play").strip('"').lower() != "play":
                continue
            if spec["protocol"] == "RTP/AVP/TCP":
                taken = {c for s in self.sessions.values() for t in s.transports.values()
                         if s is not session or t.track != track for c in (t.channels or ())}
                wanted = _port_pair(spec["interleaved"]) if "interleaved" in spec else None
                if wanted is None or not all(c <= 255 for c in wanted) or taken & set(wanted):
                    free = next((c for c in range(0, 255, 2) if not {c, c + 1} & taken), None)
                    if free is None:
                        continue
                    wanted = (free, free + 1)
                return TrackTransport(track, request.uri, channels=wanted)
            if spec["protocol"] in ("RTP/AVP", "RTP/AVP/UDP") and self.udp_ports is not None:
                ports = _port_pair(spec.get("client_port", ""))
                if ports is not None and ports[0] > 0:
                    return TrackTransport(track, request.uri, client_ports=ports)
        return None

    def _on_play(self, request: Request) -> list[Event]:
        session = self._session(request)
        if session is None:
            self._respond(request, 454)
            return []
        if request.path != session.path:
            self._respond(request, 459)
            return []
        return [PlayRequested(request, session)]

    def _on_pause(self, request: Request) -> list[Event]:
        session = self._session(request)
        if session is None:
            self._respond(request, 454)
            return []
        if not session.playing:
            self._respond(request, 455, {"Allow": "PLAY, SETUP, TEARDOWN, GET_PARAMETER"})
            return []
        session.playing = False
        self._respond(request, 200, {"Session": self._session_header(session)})
        return [Paused(session)]

    def _on_teardown(self, request: Request) -> list[Event]:
        session = self._session(request)
        if session is None:
            self._respond(request, 454)
            return []
        del self.sessions[session.id]
        self._respond(request, 200, {"Session": session.id})
        return [SessionEnded(session, "teardown")]

    def _on_get_parameter(self, request: Request) -> list[Event]:
        """A keep-alive when it names a session, a ping when it does not."""
        if request.session_id is not None and self._session(request) is None:
            self._respond(request, 454)
            return []
        headers = {"Session": request.session_id} if request.session_id else {}
        self._respond(request, 200, headers)
        return []

    _on_set_parameter = _on_get_parameter
