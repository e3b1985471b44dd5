"""One client connection: an asyncio protocol around websockets' sans-I/O WebSocket engine.

Working on the sans-I/O layer lets the server handle every complete message synchronously in
``data_received`` (queries answer without a single task switch) and write everything a burst
of messages produced with one system call. Keep-alive pings, the close handshake and
back-pressure are handled here; what the messages mean is the server's business.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import structlog
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from bridge.server.server import BridgeServer

log = structlog.get_logger(component="bridge.server")

CLOSE_TIMEOUT = 5.0


class Connection(asyncio.Protocol):
    """Per-connection protocol state: schema, subscriptions, and the WebSocket engine."""

    def __init__(self, server: BridgeServer) -> None:
        self.server = server
        self.schema = 0
        self.listening = False
        self.logs = False
        self.dropped_events = 0
        self.peer = "?"
        self.ws = ServerProtocol(max_size=server.max_message_size)
        self.transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
        self._fragment_type: Opcode | None = None
        self._flush_scheduled = False
        self._ping_handle: asyncio.TimerHandle | None = None
        self._pong_deadline: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._handshake_deadline: asyncio.TimerHandle | None = None
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
        self.ws.receive_data(data)
        self._process_events()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._process_events()
        return None

    def pause_writing(self) -> None:
        """The client does not read its answers: stop reading its commands until it does,
        so that a client which only writes cannot make the bridge buffer without bound."""
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._ping_handle, self._pong_deadline, self._close_handle,
                       self._handshake_deadline):
            if handle is not None:
                handle.cancel()
        self.server.forget(self)
        if not self.lost.done():
            self.lost.set_result(None)

    # ------------------------------------------------------------------ incoming
    def _process_events(self) -> None:
        # Everything this burst produces leaves in the one flush below.
        self._flush_scheduled = True
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self.flush()

    def _handshake(self, request: Request) -> None:
        if self._handshake_deadline is not None:
            self._handshake_deadline.cancel()
            self._handshake_deadline = None
        response = self.server.http_response(self, request)
        if response is None:
            response = self.ws.accept(request)
        self.ws.send_response(response)
        if response.status_code == 101:
            self.server.welcome(self)
            self._schedule_ping()

    def _handshake_expired(self) -> None:
        """No complete request in time: a slow or idle peer does not keep a slot."""
        self._handshake_deadline = None
        log.debug("no handshake in time", peer=self.peer)
        self._abort()

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
        self.ws.send_text(data)
        self._schedule_flush()

    def send_event(self, data: bytes) -> bool:
        """Queue an event, unless the client is too far behind to take more."""
        if self.ws.state is not State.OPEN or self.transport is None:
            return False
        if self.transport.get_write_buffer_size() > self.server.send_buffer_limit:
            self.dropped_events += 1
            if self.dropped_events == 1 or self.dropped_events % 1000 == 0:
                log.warning("client too slow, events dropped", peer=self.peer,
                            dropped=self.dropped_events)
            return False
        self.ws.send_text(data)
        self._schedule_flush()
        return True

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
        chunks = self.ws.data_to_send()
        if not chunks:
            return
        eof = chunks[-1] == b""
        if eof:
            chunks = chunks[:-1]
        if chunks:
            transport.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])
        if eof:
            transport.close()
        elif self.ws.close_expected() and self._close_handle is None:
            self._close_handle = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT, self._abort)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the transport closes when it completes (or times out)."""
        if self.ws.state is State.OPEN:
            self.ws.send_close(code, reason)
            self.flush()

    def _abort(self) -> None:
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
        self._abort()
