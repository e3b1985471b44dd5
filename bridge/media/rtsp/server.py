"""The asyncio side of the RTSP server: sockets, timers, and the media each player gets.

Every path is served by a :class:`~bridge.media.rtsp.source.MediaSource`.  The first PLAY of a
path subscribes to its source and the last player to leave (TEARDOWN, PAUSE, a closed
connection, an expired session) unsubscribes, so a camera streams only while someone watches.
Media is packetised once per path and the same packets go to every player.

A player that cannot keep up (its TCP send buffer over ``write_buffer_limit``) loses video up
to the next key frame and audio while it is behind: it costs at most that much memory, and
never delays the other players.  Reading from such a connection pauses as well, so requests
whose answers it does not read cannot pile up answers either.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

import structlog

from bridge.media.rtsp.protocol import (
    ClientPacket,
    Event,
    Paused,
    PlayRequested,
    Refused,
    Request,
    ServerConnection,
    Session,
    SessionEnded,
)
from bridge.media.rtsp.rtp import H264Packetiser, Packetiser, packetiser_for
from bridge.media.rtsp.source import H264Track, MediaItem, MediaSource, Track, Unsubscribe
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="bridge.media.rtsp")

Resolve = Callable[[str], MediaSource | None]
Release = Callable[[], None]
Admit = Callable[[Request], Release]
_INTERLEAVED = struct.Struct("!cBH")  # "$", channel, length: RTP inside the RTSP connection


@dataclass(frozen=True, slots=True)
class PlayerInfo:
    """What the server holds for one player, for inspection."""

    session: str
    transport: str  # "tcp" or "udp"
    buffered: int  # bytes waiting in the send buffer
    skipped: int  # access units skipped because the player was behind


class _Broadcast:
    """One path's running source and the players it feeds."""

    def __init__(self, path: str, source: MediaSource) -> None:
        self.path = path
        self.source = source
        self.tracks: Sequence[Track] = tuple(source.tracks)
        self.packetisers: list[Packetiser] = [packetiser_for(t) for t in self.tracks]
        self.video = [isinstance(t, H264Track) for t in self.tracks]
        self.players: set[_Player] = set()
        self.holders = 0  # players plus PLAYs waiting for the source to start
        self.started: asyncio.Task[Unsubscribe] | None = None

    def sink(self, item: MediaItem) -> None:
        if not 0 <= item.track < len(self.packetisers) or not self.players:
            return
        packets = self.packetisers[item.track].packetise(item.data, item.pts, item.keyframe)
        if not packets:
            return
        video = self.video[item.track]
        for player in tuple(self.players):
            player.deliver(item.track, packets, video, item.keyframe)

    def described(self) -> list[Track]:
        """The tracks, with parameter sets learnt from the stream where the source gave none."""
        tracks = list(self.tracks)
        for index, packetiser in enumerate(self.packetisers):
            track = tracks[index]
            if isinstance(packetiser, H264Packetiser) and isinstance(track, H264Track) and (
                    not track.sps or not track.pps):
                tracks[index] = replace(track, sps=packetiser.sps, pps=packetiser.pps)
        return tracks


class _Player:
    """One playing session: frames packets for its transport and skips what it cannot send."""

    def __init__(self, connection: _Connection, session: Session, has_video: bool,
                 release: Release) -> None:
        self.connection = connection
        self.session = session
        self.release = release
        self.waiting_for_key = has_video
        self.skipped = 0
        self.udp = all(t.channels is None for t in session.transports.values())

    def buffered(self) -> int:
        if self.udp:
            rtp = self.connection.server.udp_transport
            return rtp.get_write_buffer_size() if rtp is not None else 0
        transport = self.connection.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def deliver(self, track: int, packets: list[bytes], video: bool, keyframe: bool) -> None:
        transport = self.session.transports.get(track)
        if transport is None:
            return
        congested = self.buffered() > self.connection.server.write_buffer_limit
        if video:
            if congested:
                self.waiting_for_key = True
            elif self.waiting_for_key and keyframe:
                self.waiting_for_key = False
        if congested or self.waiting_for_key:
            self.skipped += 1
            return
        if transport.channels is not None:
            channel = transport.channels[0]
            data = b"".join(_INTERLEAVED.pack(b"$", channel, len(p)) + p for p in packets)
            self.connection.write(data)
            return
        rtp = self.connection.server.udp_transport
        if rtp is None or transport.client_ports is None or self.connection.peer is None:
            return
        address = (self.connection.peer, transport.client_ports[0])
        for packet in packets:
            rtp.sendto(packet, address)


class _Connection(asyncio.Protocol):
    def __init__(self, server: RtspServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.players: dict[str, _Player] = {}
        self.protocol = ServerConnection(
            describe=server._describe, authorize=server.authorize, realm=server.realm,
            udp_ports=server.udp_ports, session_timeout=server.session_timeout,
            max_sessions=server.max_sessions, now=time.monotonic(), name=server.name)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport, though not always a subclass of asyncio's (uvloop's is not)
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.server.write_buffer_limit)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else None
        self.server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.handle(self.protocol.receive_data(data, time.monotonic()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        self.handle(self.protocol.connection_lost())
        self.transport = None

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def flush(self) -> None:
        data = self.protocol.data_to_send()
        if data:
            self.write(data)
        if self.protocol.closing and self.transport is not None:
            self.transport.close()

    def handle(self, events: list[Event]) -> None:
        for event in events:
            match event:
                case PlayRequested():
                    self.server._tasks.spawn(self.server._play(self, event),
                                             name=f"rtsp play {event.session.path}")
                case Paused(session=session) | SessionEnded(session=session):
                    self.server._stop_player(self, session)
                case ClientPacket():
                    pass  # RTCP receiver reports: a sign of life, already counted
        self.flush()


class _RtcpEndpoint(asyncio.DatagramProtocol):
    """Receiver reports from UDP players keep their sessions alive."""

    def __init__(self, server: RtspServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        now = time.monotonic()
        for connection in tuple(self.server._connections):
            for session in connection.protocol.sessions.values():
                if connection.peer == addr[0] and any(
                        t.client_ports and t.client_ports[1] == addr[1]
                        for t in session.transports.values()):
                    connection.protocol.touch(session, now)


def _bind_udp_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on an even port and the next one, as RTP and RTCP expect."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2 == 0 and port < 0xFFFF:
            rtcp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                rtcp.bind((host, port + 1))
            except OSError:
                rtcp.close()
            else:
                return rtp, rtcp
        rtp.close()
    raise OSError("no free pair of UDP ports for RTP")


class RtspServer:
    """Serves the sources ``resolve`` finds by path to RTSP players (see the module doc).

    ``authorize``: a check from :mod:`bridge.media.rtsp.auth` (None lets everyone in).
    ``udp``: offer RTP over UDP besides TCP interleaving.  ``start_timeout``: how long a PLAY
    waits for a source to start before it is answered 503.  ``admit``: asked at the PLAY that
    starts a player; it raises :class:`~bridge.media.rtsp.protocol.Refused` to turn the player
    away (a device's stream slots are all taken), or returns what to call once that player has
    stopped, so that a limit shared with other kinds of stream can be kept.
    """

    def __init__(self, resolve: Resolve, *, authorize: Callable[..., bool] | None = None,
                 host: str = "127.0.0.1", port: int = 0, udp: bool = True,
                 session_timeout: float = 60.0, max_sessions: int = 4,
                 write_buffer_limit: int = 512 * 1024, start_timeout: float = 10.0,
                 realm: str = "eufy-bridge", name: str = "eufy-bridge",
                 admit: Admit | None = None) -> None:
        self.resolve = resolve
        self.authorize = authorize or (lambda request: True)
        self.admit: Admit = admit or (lambda request: lambda: None)
        self.host = host
        self.port = port
        self.udp = udp
        self.session_timeout = session_timeout
        self.max_sessions = max_sessions
        self.write_buffer_limit = write_buffer_limit
        self.start_timeout = start_timeout
        self.realm = realm
        self.name = name
        self.udp_ports: tuple[int, int] | None = None
        self.udp_transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._broadcasts: dict[str, _Broadcast] = {}
        self._tasks = BackgroundTasks("rtsp")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host,
                                                self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.udp:
            rtp, rtcp = _bind_udp_pair(self.host)
            self.udp_transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, sock=rtp)
            self._rtcp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _RtcpEndpoint(self), sock=rtcp)
            self.udp_ports = (rtp.getsockname()[1], rtcp.getsockname()[1])
        self._tasks.spawn(self._expire_sessions(), name="rtsp session expiry")
        log.info("rtsp server listening", host=self.host, port=self.port,
                 udp_ports=self.udp_ports)

    def url(self, path: str, host: str | None = None) -> str:
        return f"rtsp://{host or self.host}:{self.port}{path}"

    async def close(self) -> None:
        """Stop listening, end every connection and unsubscribe from every source."""
        if self._server is not None:
            self._server.close()
        for connection in tuple(self._connections):
            if connection.transport is not None:
                connection.transport.abort()
        await asyncio.sleep(0)  # connection_lost callbacks run, sessions end
        for broadcast in tuple(self._broadcasts.values()):
            self._end(broadcast)
        await self._tasks.cancel_all()
        for transport in (self.udp_transport, self._rtcp_transport):
            if transport is not None:
                transport.close()
        if self._server is not None:
            await self._server.wait_closed()

    def players(self, path: str) -> list[PlayerInfo]:
        broadcast = self._broadcasts.get(path)
        if broadcast is None:
            return []
        return [PlayerInfo(p.session.id, "udp" if p.udp else "tcp", p.buffered(), p.skipped)
                for p in broadcast.players]

    def end(self, path: str) -> None:
        """The path's source stopped by itself: its players' connections are closed (a player
        that comes back starts it anew) instead of waiting for media that never comes."""
        broadcast = self._broadcasts.get(path)
        if broadcast is None:
            return
        for player in tuple(broadcast.players):
            if player.connection.transport is not None:
                player.connection.transport.close()
        self._end(broadcast)

    def streaming(self, path: str) -> bool:
        """Whether the path's source is subscribed to."""
        return path in self._broadcasts

    # -- internals -------------------------------------------------------------------------

    def _describe(self, path: str) -> Sequence[Track] | None:
        broadcast = self._broadcasts.get(path)
        if broadcast is not None:
            return broadcast.described()
        source = self.resolve(path)
        return None if source is None else tuple(source.tracks)

    async def _expire_sessions(self) -> None:
        interval = min(1.0, self.session_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in tuple(self._connections):
                events = connection.protocol.expire(now)
                if events:
                    log.info("rtsp session expired", peer=connection.peer)
                    connection.handle(events)

    async def _play(self, connection: _Connection, event: PlayRequested) -> None:
        session, request = event.session, event.request
        if session.id in connection.players:  # PLAY while playing: nothing changes
            connection.protocol.accept_play(request, session)
            connection.flush()
            return
        try:
            release = self.admit(request)
        except Refused as refusal:
            connection.protocol.refuse(request, refusal.status)
            connection.flush()
            return
        started = False
        try:
            started = await self._start_player(connection, event, release)
        finally:
            if not started:
                release()

    async def _start_player(self, connection: _Connection, event: PlayRequested,
                            release: Release) -> bool:
        """Whether the session became a player (which then holds ``release``)."""
        session, request = event.session, event.request
        try:
            broadcast = await self._acquire(session.path)
        except LookupError:
            connection.protocol.refuse(request, 404)
            connection.flush()
            return False
        except Exception as error:
            log.warning("rtsp source did not start", path=session.path, error=repr(error))
            connection.protocol.refuse(request, 503)
            connection.flush()
            return False
        if connection.protocol.sessions.get(session.id) is not session or (
                connection.transport is None):
            self._release(broadcast)  # the session ended while its source started
            connection.protocol.refuse(request, 454)
            connection.flush()
            return False
        connection.protocol.accept_play(request, session)
        connection.flush()
        if session.id in connection.players:  # a second PLAY overtook this one
            self._release(broadcast)
            return False
        has_video = any(broadcast.video[t] for t in session.transports
                        if t < len(broadcast.video))
        player = _Player(connection, session, has_video, release)
        connection.players[session.id] = player
        broadcast.players.add(player)
        return True

    async def _acquire(self, path: str) -> _Broadcast:
        broadcast = self._broadcasts.get(path)
        if broadcast is None:
            source = self.resolve(path)
            if source is None:
                raise LookupError(path)
            broadcast = self._broadcasts[path] = _Broadcast(path, source)
            broadcast.started = self._tasks.spawn(source.subscribe(broadcast.sink),
                                                  name=f"rtsp source {path}", awaited=True)
            log.info("rtsp source starting", path=path)
        broadcast.holders += 1
        try:
            assert broadcast.started is not None
            async with asyncio.timeout(self.start_timeout):
                await asyncio.shield(broadcast.started)
        except BaseException:
            self._release(broadcast)
            raise
        return broadcast

    def _release(self, broadcast: _Broadcast) -> None:
        broadcast.holders -= 1
        if broadcast.holders <= 0:
            self._end(broadcast)

    def _end(self, broadcast: _Broadcast) -> None:
        if self._broadcasts.get(broadcast.path) is broadcast:
            del self._broadcasts[broadcast.path]
        broadcast.players.clear()
        started = broadcast.started
        if started is not None and not started.done():
            started.cancel()
        elif started is not None and not started.cancelled() and started.exception() is None:
            try:
                started.result()()
            except Exception:  # the source's own failure to stop must not stop the server
                log.exception("rtsp source failed to stop", path=broadcast.path)
            else:
                log.info("rtsp source stopped", path=broadcast.path)

    def _stop_player(self, connection: _Connection, session: Session) -> None:
        player = connection.players.pop(session.id, None)
        if player is None:
            return
        player.release()
        broadcast = self._broadcasts.get(session.path)
        if broadcast is not None and player in broadcast.players:
            broadcast.players.discard(player)
            self._release(broadcast)
