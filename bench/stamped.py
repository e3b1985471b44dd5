"""A WebSocket client connection that knows when each message's bytes reached its socket, by the
kernel's clock rather than by when this process got round to reading them.

One benchmark process hosts a hundred clients and reads their sockets one after another, so the
hundredth copy of a ring is read only after the ninety-nine before it have been parsed: a stamp
taken on reading measures the benchmark as much as the bridge. Linux stamps each TCP segment as
it arrives (``SO_TIMESTAMPNS``) and ``recvmsg`` hands back the stamp of the newest segment read:
the moment the bridge's bytes were in the client's socket. The WebSocket protocol itself is the
websockets library's (sans-I/O), driven from the event loop's reader callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's option number, where Python does not name it."""
_TIMESPEC = struct.Struct("qq")
READ_SIZE = 1 << 18

OnMessage = Callable[[bytes, float], None]
"""Called with each whole message and the wall-clock moment its last bytes arrived."""


class StampedConnection:
    """A client connection; ``on_message`` hears every message with its arrival stamp."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol,
                 on_message: OnMessage) -> None:
        self.sock, self.protocol, self.on_message = sock, protocol, on_message
        self.loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = self.loop.create_future()
        self.closed = asyncio.Event()
        self._parts: list[bytes] = []
        self._out = bytearray()  # bytes the socket has not taken yet, in order
        self._writing = self._done_writing = False

    @classmethod
    async def open(cls, url: str, on_message: OnMessage) -> StampedConnection:
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            await loop.sock_connect(sock, (uri.host, uri.port))
        except BaseException:
            sock.close()
            raise
        protocol = ClientProtocol(uri, max_size=None)
        connection = cls(sock, protocol, on_message)
        protocol.send_request(protocol.connect())
        loop.add_reader(sock, connection._readable)
        connection._flush()
        try:
            await connection.opened
        except BaseException:
            connection._shut()
            raise
        return connection

    def send(self, text: str) -> None:
        if self.protocol.state is not State.OPEN:
            raise ConnectionError("the connection is closed")
        self.protocol.send_text(text.encode())
        self._flush()

    async def close(self) -> None:
        """The closing handshake (five seconds at most), then the socket goes."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close()
            self._flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.closed.wait()
        self._shut()

    def _flush(self) -> None:
        """Write what the protocol has to send (requests, pongs, the closing handshake), in
        order: what the socket does not take now goes when it is writable."""
        for chunk in self.protocol.data_to_send():
            if chunk:
                self._out += chunk
            else:  # the protocol is done writing
                self._done_writing = True
        self._write_out()

    def _write_out(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self._out:
            try:
                del self._out[:self.sock.send(self._out)]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # the connection broke: reading will find its end
                self._out.clear()
        if self._out and not self._writing:
            self.loop.add_writer(self.sock, self._write_out)
            self._writing = True
        elif not self._out:
            if self._writing:
                self.loop.remove_writer(self.sock)
                self._writing = False
            if self._done_writing:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(READ_SIZE,
                                                       socket.CMSG_SPACE(_TIMESPEC.size))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        stamp = time.time()
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(raw)
                stamp = seconds + nanoseconds / 1e9
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self._handshake_done()
            elif isinstance(event, Frame):
                self._frame(event, stamp)
        self._flush()
        if not data or self.protocol.state is State.CLOSED:
            self._shut()

    def _handshake_done(self) -> None:
        if self.opened.done():
            return
        failure = self.protocol.handshake_exc
        if failure is None:
            self.opened.set_result(None)
        else:
            self.opened.set_exception(failure)

    def _frame(self, frame: Frame, stamp: float) -> None:
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return
        self._parts.append(frame.data)
        if frame.fin:
            message = b"".join(self._parts) if len(self._parts) > 1 else self._parts[0]
            self._parts = []
            self.on_message(bytes(message), stamp)

    def _shut(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock)
            if self._writing:
                self.loop.remove_writer(self.sock)
            self.sock.close()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        self.closed.set()
