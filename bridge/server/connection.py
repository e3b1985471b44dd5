"""One client connection: an asyncio protocol around websockets' sans-I/O WebSocket engine.

Working on the sans-I/O layer lets the server handle every complete message synchronously in
``data_received`` (queries answer without a single task switch) and write everything a burst
of messages produced with one system call. Keep-alive pings, the close handshake and
back-pressure are handled here; what the messages mean is the server's business.

Once the connection is open, the frames that carry nearly all the traffic (complete, masked
text or binary frames within the size limit) are split and unmasked here, and answers are
framed here: the engine's per-frame objects cost more than answering ``driver.is_connected``.
Everything else (pings, pongs, close frames) is handed to the engine frame by frame, and
anything unusual (fragments, reserved bits, oversized or unmasked frames) hands the rest of the
connection to it, so the protocol's rules stay the engine's.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from bridge.server.session import Session

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is missing on exotic platforms
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from bridge.server.server import BridgeServer

log = structlog.get_logger(component="bridge.server")

CLOSE_TIMEOUT = 5.0
FLUSH_BYTES = 64 * 1024
"""Answers a burst has produced beyond this are written at once, so that the transport can
say it is full before the burst has produced more."""
MAX_REQUEST_HEAD = 16 * 1024
"""Beyond this without the end of the HTTP request, the engine gets the bytes as they come."""
_DATA_FRAMES = (0x81, 0x82)  # FIN, no reserved bits, text or binary
_CONTROL_FRAMES = (0x88, 0x89, 0x8A)  # close, ping, pong
_SHORT_HEADERS = tuple(bytes((0x81, size)) for size in range(126))


def _text_header(size: int) -> bytes:
    """An unmasked server text frame's header for a payload of ``size`` bytes."""
    if size < 126:
        return _SHORT_HEADERS[size]
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


@dataclass(frozen=True, slots=True)
class Streamed:
    """An HTTP answer written over time (live video): ``run`` writes the whole response,
    head included, with :meth:`Connection.write`; the connection closes when it returns, and
    it is cancelled when the client goes."""

    run: Callable[[Connection], Awaitable[None]]


class Connection(asyncio.Protocol):
    """One client's transport, WebSocket engine, queue of messages not yet handled, and
    session (schema, subscriptions, command tasks)."""

    def __init__(self, server: BridgeServer) -> None:
        self.server = server
        self.session = Session(server.driver, lambda: self.peer, server.max_in_flight,
                               settled=self._drain, send=self.send, backlog=self.backlog)
        self.dropped_events = 0
        self.peer = "?"
        self.ws = ServerProtocol(max_size=server.max_message_size)
        self.transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
        self._fragment_type: Opcode | None = None
        self._inbox = b""  # bytes not yet split into frames (the fast path's)
        self._engine_only = False
        self._pending: deque[bytes | Request | Frame] = deque()
        self._out: list[bytes] = []
        self._out_size = 0
        self._writing_paused = False
        self._reading_held = False
        self._flush_scheduled = False
        self._ping_handle: asyncio.TimerHandle | None = None
        self._pong_deadline: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._handshake_deadline: asyncio.TimerHandle | None = None
        self._streaming: asyncio.Task[None] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ asyncio protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
        # Counted before anything is read; one over the cap still gets its 503 answer.
        self.server.admit(self)
        self._handshake_deadline = asyncio.get_running_loop().call_later(
            self.server.handshake_timeout, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        if self._streaming is not None:
            return  # an HTTP answer is being streamed: nothing more is read from this client
        self._flush_scheduled = True  # everything this read produces leaves in one write
        self._receive(data)
        self._drain()

    def eof_received(self) -> bool | None:
        if self._streaming is not None:
            return None  # the client is gone: the transport closes, the stream ends
        self.ws.receive_eof()
        self._pending.extend(self.ws.events_received())
        self._drain()
        return None

    def pause_writing(self) -> None:
        """The client does not read its answers: stop handling its messages (the rest of a
        burst stays queued) and stop reading until it does, so that a client which only
        writes cannot make the bridge buffer without bound."""
        self._writing_paused = True
        self._hold_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._drain()

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._ping_handle, self._pong_deadline, self._close_handle,
                       self._handshake_deadline):
            if handle is not None:
                handle.cancel()
        self.session.cancel()
        if self._streaming is not None:
            self._streaming.cancel()
        self._pending.clear()
        self.server.forget(self)
        if not self.lost.done():
            self.lost.set_result(None)

    # ------------------------------------------------------------------ incoming
    def _receive(self, data: bytes) -> None:
        """Queue what ``data`` completes: messages split here while the connection is open,
        the engine's events otherwise."""
        if self._engine_only:
            self._to_engine(data)
            return
        if self._inbox:
            data, self._inbox = self._inbox + data, b""
        if self.ws.state is State.OPEN:
            self._split(data)
            return
        if self.ws.state is not State.CONNECTING:
            self._engine_only = True
            self._to_engine(data)
            return
        # Before the handshake: only the request goes to the engine; what follows it waits
        # until the handshake has been answered and the connection is open (or not).
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_REQUEST_HEAD:
                self._engine_only = True
                self._to_engine(data)
            else:
                self._inbox = data
            return
        self._to_engine(data[:end + 4])
        rest = data[end + 4:]
        if rest and self._streaming is None:
            self._drain()  # answers the handshake, so the state says where the rest goes
            if self.ws.state is not State.OPEN:
                self._engine_only = True
            self._receive(rest)

    def _to_engine(self, data: bytes) -> None:
        self.ws.receive_data(data)
        self._pending.extend(self.ws.events_received())

    def _split(self, data: bytes) -> None:
        """Handle every complete data frame's payload at once, or queue it when the
        connection must wait (see :meth:`_drain`) or something is queued before it; control
        frames go to the engine; the first unusual frame hands everything from it on to the
        engine for good."""
        pending = self._pending
        session = self.session
        max_size = self.server.max_message_size
        size = len(data)
        pos = 0
        while size - pos >= 2:
            first, second = data[pos], data[pos + 1]
            length = second & 0x7F
            head = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2:pos + 10])
                head = pos + 10
            end = head + 4 + length
            is_data = first in _DATA_FRAMES
            if not second & 0x80 or (length > max_size if is_data else (
                    first not in _CONTROL_FRAMES or length > 125)):
                self._engine_only = True
                self._to_engine(data[pos:])
                return
            if end > size:
                break
            if is_data:
                payload = apply_mask(data[head + 4:end], data[head:head + 4])
                if pending or self._writing_paused or session.full:
                    pending.append(payload)
                else:
                    self._message(payload)
                    if self._out_size > FLUSH_BYTES:
                        self.flush()
            else:
                self._to_engine(data[pos:end])
                if self.ws.state is not State.OPEN:  # closing: the rest is the engine's
                    self._engine_only = True
                    self._to_engine(data[end:])
                    return
            pos = end
        if pos < size:
            self._inbox = data[pos:]

    def _drain(self) -> None:
        """Handle queued messages in order until none is left or the connection must wait:
        its answers are not being read (the transport's buffer is over its limit), or it has
        as many commands in flight as it may (``server.max_in_flight``). What is left stays
        queued and reading stops, so the client's further messages wait in its socket;
        handling resumes when the buffer drains or a command ends.

        Waiting rather than refusing the command over the cap loses nothing: clients send
        bursts at start-up (properties of every device) and would otherwise see arbitrary
        failures; TCP carries the back-pressure to a client that sends faster than its
        commands end.
        """
        pending = self._pending
        session = self.session
        # Everything this burst produces leaves in one write (or a few, for large bursts).
        self._flush_scheduled = True
        while pending and not self._writing_paused and not session.full:
            item = pending.popleft()
            if type(item) is bytes:
                self._message(item)
            elif isinstance(item, Request):
                self._handshake(item)
            elif isinstance(item, Frame):
                self._frame(item)
            if self._out_size > FLUSH_BYTES:
                self.flush()
        self.flush()
        self._hold_reading()

    def _hold_reading(self) -> None:
        """Read from the socket only while nothing waits to be handled."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        hold = self._writing_paused or bool(self._pending)
        if hold != self._reading_held:
            self._reading_held = hold
            if hold:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _handshake(self, request: Request) -> None:
        if self._handshake_deadline is not None:
            self._handshake_deadline.cancel()
            self._handshake_deadline = None
        response = self.server.http_response(self, request)
        if isinstance(response, Streamed):
            self._stream(response)
            return
        if response is None:
            response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code == 101:
            self.server.welcome(self)
            self._schedule_ping()

    def _stream(self, answer: Streamed) -> None:
        """Hand the connection to a streamed HTTP answer for good."""
        self._pending.clear()
        self._streaming = asyncio.get_running_loop().create_task(self._run_stream(answer))

    async def _run_stream(self, answer: Streamed) -> None:
        try:
            await answer.run(self)
        except Exception:
            log.exception("streamed HTTP answer failed", peer=self.peer)
        finally:
            if self.transport is not None:
                self.transport.close()  # after what is buffered has been written

    def write(self, data: bytes) -> None:
        """Write a streamed answer's bytes as they are (no WebSocket framing)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _handshake_expired(self) -> None:
        """No complete request in time: a slow or idle peer does not keep a slot."""
        self._handshake_deadline = None
        log.debug("no handshake in time", peer=self.peer)
        self.abort()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PONG:
            if self._pong_deadline is not None:
                self._pong_deadline.cancel()
                self._pong_deadline = None
            return
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            if frame.fin:
                self._message(frame.data)
                return
            self._fragment_type, self._fragments = opcode, [frame.data]
        elif opcode is Opcode.CONT and self._fragment_type is not None:
            self._fragments.append(frame.data)
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments, self._fragment_type = [], None
                self._message(data)

    def _message(self, data: bytes) -> None:
        if self.ws.state is not State.OPEN:
            return
        if not self.server.on_message(self, data):
            self.close(1003, "message is not JSON")

    # ------------------------------------------------------------------ outgoing
    def send(self, data: bytes) -> None:
        """Queue a message (results are never dropped) and flush soon."""
        if self.ws.state is not State.OPEN:
            return
        self._queue(data)
        self._schedule_flush()

    def _queue(self, data: bytes) -> None:
        engine = self.ws.data_to_send()  # a pong or the handshake answer goes first
        if engine:
            self._out.extend(engine)
        self._out.append(_text_header(len(data)))
        self._out.append(data)
        self._out_size += len(data)

    def send_event(self, data: bytes) -> bool:
        """Queue an event, unless the client is too far behind to take more."""
        if self.ws.state is not State.OPEN or self.transport is None:
            return False
        if self.transport.get_write_buffer_size() + self._out_size > \
                self.server.send_buffer_limit:
            self.dropped_events += 1
            if self.dropped_events == 1 or self.dropped_events % 1000 == 0:
                log.warning("client too slow, events dropped", peer=self.peer,
                            dropped=self.dropped_events)
            return False
        self._queue(data)
        self._schedule_flush()
        return True

    def backlog(self) -> int:
        """Bytes written for this client and not yet taken by it."""
        transport = self.transport
        return self._out_size + (transport.get_write_buffer_size() if transport else 0)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write whatever the engine has produced, in one call."""
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        chunks = self._out
        engine = self.ws.data_to_send()
        if engine:
            chunks.extend(engine)
        if not chunks:
            return
        self._out, self._out_size = [], 0
        eof = chunks[-1] == b""
        if eof:
            chunks.pop()
        if chunks:
            transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])
        if eof:
            transport.close()
        elif self._close_handle is None and self.ws.close_expected():
            self._close_handle = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT, self.abort)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the transport closes when it completes (or times out)."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason)
            self.flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ keep-alive
    def _schedule_ping(self) -> None:
        interval = self.server.ping_interval
        if interval:
            self._ping_handle = asyncio.get_running_loop().call_later(interval, self._ping)

    def _ping(self) -> None:
        if self.ws.state is not State.OPEN:
            return
        self.ws.send_ping(os.urandom(4))
        self.flush()
        if self.server.ping_timeout and self._pong_deadline is None:
            self._pong_deadline = asyncio.get_running_loop().call_later(
                self.server.ping_timeout, self._no_pong)
        self._schedule_ping()

    def _no_pong(self) -> None:
        log.info("client stopped answering pings", peer=self.peer)
        self.ws.fail(1011, "keepalive ping timeout")
        self.flush()
        self.abort()
