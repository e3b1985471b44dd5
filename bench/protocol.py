"""Protocol benchmark: round-trip latency and throughput of ``driver.is_connected``.

Starts ``eufy-bridge`` as its own process, then drives it from this process with a lean
WebSocket load generator (raw frames over asyncio protocols, so that the generator costs as
little as possible of the machine's two cores).  Prints p50/p99 latency in microseconds on one
connection (one request at a time) and requests per second with 50 connections and 4 requests
in flight on each.

The same generator is then pointed at a trivial echo server in its own process, which answers
each frame with a canned frame: its figures are the floor that the machine and the generator
impose, so the difference is what the bridge itself costs.

    python bench/protocol.py [--seconds 5] [--connections 50] [--in-flight 4] [--no-floor]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

REQUEST = b'{"messageId":"b","command":"driver.is_connected"}'


def client_frame(payload: bytes) -> bytes:
    """A masked text frame (an all-zero mask leaves the payload as it is)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    return header + b"\0\0\0\0" + payload


FRAME = client_frame(REQUEST)


class LoadProtocol(asyncio.Protocol):
    """One WebSocket connection that counts the frames it receives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.handshake_done = False
        self.frames = 0
        self.on_frame = lambda: None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshake_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.handshake_done = True
        buf = self.buffer
        while len(buf) >= 2:
            size = buf[1] & 0x7F
            offset = 2
            if size == 126:
                if len(buf) < 4:
                    return
                size = struct.unpack_from("!H", buf, 2)[0]
                offset = 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size = struct.unpack_from("!Q", buf, 2)[0]
                offset = 10
            if len(buf) < offset + size:
                return
            del buf[: offset + size]
            self.frames += 1
            if self.frames == 1:
                self.upgraded.set_result(None)  # the version hello
            else:
                self.on_frame()


async def open_connection(host: str, port: int) -> LoadProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(LoadProtocol, host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert protocol.transport is not None
    protocol.transport.write(
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await asyncio.wait_for(protocol.upgraded, 10)
    return protocol


async def latency(host: str, port: int, seconds: float) -> list[float]:
    conn = await open_connection(host, port)
    assert conn.transport is not None
    samples: list[float] = []
    done: asyncio.Future[None] | None = None

    def answered() -> None:
        if done is not None and not done.done():
            done.set_result(None)

    conn.on_frame = answered
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        done = loop.create_future()
        start = time.perf_counter_ns()
        conn.transport.write(FRAME)
        await done
        samples.append((time.perf_counter_ns() - start) / 1000)
    conn.transport.close()
    return samples


async def throughput(host: str, port: int, seconds: float, connections: int,
                     in_flight: int) -> float:
    conns = [await open_connection(host, port) for _ in range(connections)]
    running = True

    for conn in conns:
        def again(conn: LoadProtocol = conn) -> None:
            if running:
                conn.transport.write(FRAME)  # type: ignore[union-attr]
        conn.on_frame = again

    await asyncio.sleep(0.2)
    warm = [c.frames for c in conns]
    for conn in conns:
        conn.transport.write(FRAME * in_flight)  # type: ignore[union-attr]
    await asyncio.sleep(0.5)  # warm-up
    warm = [c.frames for c in conns]
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - start
    answered = sum(c.frames for c in conns) - sum(warm)
    running = False
    for conn in conns:
        conn.transport.close()  # type: ignore[union-attr]
    return answered / elapsed


ECHO_SERVER = """
import asyncio, sys
try:
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run
HELLO = b"HTTP/1.1 101 Switching Protocols\\r\\n\\r\\n" + b"\\x81\\x02hi"
ANSWER = b"\\x81\\x10" + b"x" * 16
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.open = transport, False
    def data_received(self, data):
        if not self.open:
            self.open = True
            self.transport.write(HELLO)
            return
        self.transport.write(ANSWER * data.count(b"is_connected"))
async def main():
    await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()
run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=4)

    parser.add_argument("--no-floor", action="store_true", help="skip the echo baseline")
    args = parser.parse_args()
    measure("eufy-bridge",
            [sys.executable, "-m", "bridge", "--port", "{port}", "--log-level", "warn"], args)
    if not args.no_floor:
        measure("floor (echo)", [sys.executable, "-c", ECHO_SERVER, "{port}"], args)


def measure(label: str, command: list[str], args: argparse.Namespace) -> None:
    host, port = "127.0.0.1", free_port()
    server = subprocess.Popen([part.format(port=port) for part in command])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"{label} did not start") from None
                time.sleep(0.1)
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        samples = runner(latency(host, port, args.seconds))
        quantiles = statistics.quantiles(samples, n=100)
        print(f"{label}: latency, 1 connection, sequential: {len(samples)} round trips, "
              f"p50 {quantiles[49]:.0f} us, p99 {quantiles[98]:.0f} us, "
              f"{len(samples) / args.seconds:,.0f} req/s")
        rate = runner(throughput(host, port, args.seconds, args.connections, args.in_flight))
        print(f"{label}: throughput, {args.connections} connections x {args.in_flight} "
              "in flight: "
              f"{rate:,.0f} req/s")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


if __name__ == "__main__":
    main()
