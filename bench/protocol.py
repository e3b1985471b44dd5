"""Protocol benchmark: round trips and throughput of ``driver.is_connected``, and a flood.

Starts ``eufy-bridge`` as its own process, then drives it from this process with a lean
WebSocket load generator (raw frames over asyncio protocols, so that the generator costs as
little as possible of the machine's two cores).  Prints, for the bridge:

- latency on 1 connection with 1 request in flight (p50, p99, requests per second);
- throughput on 1 connection with 4 requests in flight;
- throughput on 50 connections with 4 requests in flight each;
- a flood: one connection keeps sending and never reads, while another measures round trips
  (p50, p99, max) and the bridge's resident memory is sampled.

The same generator is then pointed at a trivial echo server in its own process, which answers
each frame with a canned frame: its figures are the floor that the machine and the generator
impose, so the difference is what the bridge itself costs.

``--tree`` runs the bridge from another checkout (for before/after comparisons in one
sitting): its process then imports that tree's code, not this one's.

    python bench/protocol.py [--seconds 5] [--connections 50] [--in-flight 4] [--no-floor]
                             [--tree ../other-checkout]
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
from collections.abc import Callable
from pathlib import Path

from harness import cpu_seconds, free_port, rss_megabytes, run

REQUEST = b'{"messageId":"b","command":"driver.is_connected"}'
HERE = Path(__file__).resolve().parent.parent


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
        self.on_frame: Callable[[], None] = lambda: None
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()

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


async def round_trips(conn: LoadProtocol, seconds: float) -> list[float]:
    """Sequential round trips on one connection for ``seconds``, in microseconds each."""
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
    return samples


async def latency(host: str, port: int, seconds: float) -> list[float]:
    conn = await open_connection(host, port)
    samples = await round_trips(conn, seconds)
    conn.transport.close()  # type: ignore[union-attr]
    return samples


async def throughput(host: str, port: int, seconds: float, connections: int,
                     in_flight: int, pid: int) -> tuple[float, float | None]:
    """Requests per second, and the server's CPU microseconds per request."""
    conns = [await open_connection(host, port) for _ in range(connections)]
    running = True

    for conn in conns:
        def again(conn: LoadProtocol = conn) -> None:
            if running:
                conn.transport.write(FRAME)  # type: ignore[union-attr]
        conn.on_frame = again

    for conn in conns:
        conn.transport.write(FRAME * in_flight)  # type: ignore[union-attr]
    await asyncio.sleep(0.5)  # warm-up
    warm = [c.frames for c in conns]
    cpu_start = cpu_seconds(pid)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - start
    cpu_end = cpu_seconds(pid)
    answered = sum(c.frames for c in conns) - sum(warm)
    running = False
    for conn in conns:
        conn.transport.close()  # type: ignore[union-attr]
    cpu = (cpu_end - cpu_start) / answered * 1e6 if answered else None
    return answered / elapsed, cpu


async def flood(host: str, port: int, seconds: float, pid: int) -> dict[str, float]:
    """One connection writes requests as fast as its socket takes them and reads nothing;
    another measures sequential round trips meanwhile; memory is sampled every 100 ms."""
    flooder = await open_connection(host, port)
    assert flooder.transport is not None
    flooder.transport.pause_reading()  # never read: the answers pile up in the bridge
    chunk = FRAME * 1000
    sent = 0
    rss_before = rss_megabytes(pid)
    peak = rss_before
    running = True

    async def keep_sending() -> None:
        nonlocal sent
        while running and not flooder.transport.is_closing():  # type: ignore[union-attr]
            if flooder.writable.is_set():
                flooder.transport.write(chunk)  # type: ignore[union-attr]
                sent += 1000
            await asyncio.sleep(0.001)

    async def sample_memory() -> None:
        nonlocal peak
        while running:
            peak = max(peak, rss_megabytes(pid))
            await asyncio.sleep(0.1)

    sender = asyncio.create_task(keep_sending())
    sampler = asyncio.create_task(sample_memory())
    await asyncio.sleep(1.0)  # let the flood fill every buffer on the way
    measurer = await open_connection(host, port)
    samples = await round_trips(measurer, seconds)
    running = False
    await asyncio.gather(sender, sampler)
    measurer.transport.close()  # type: ignore[union-attr]
    flooder.transport.abort()
    quantiles = statistics.quantiles(samples, n=100)
    return {"p50": quantiles[49], "p99": quantiles[98], "max": max(samples),
            "round_trips": len(samples), "sent": sent,
            "rss_before": rss_before, "rss_peak": peak}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--tree", type=Path, default=HERE,
                        help="the checkout whose bridge is measured (default: this one)")
    parser.add_argument("--no-floor", action="store_true", help="skip the echo baseline")
    args = parser.parse_args()
    tree = args.tree.resolve()
    measure("eufy-bridge",
            [sys.executable, "-m", "bridge", "--port", "{port}", "--log-level", "warn"],
            args, tree, flooded=True)
    if not args.no_floor:
        measure("floor (echo)", [sys.executable, "-c", ECHO_SERVER, "{port}"], args, tree)


def measure(label: str, command: list[str], args: argparse.Namespace, tree: Path,
            flooded: bool = False) -> None:
    host, port = "127.0.0.1", free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    server = subprocess.Popen([part.format(port=port) for part in command], cwd=tree, env=env)
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
        samples = run(latency(host, port, args.seconds))
        quantiles = statistics.quantiles(samples, n=100)
        print(f"{label}: 1 connection x 1 in flight: {len(samples) / args.seconds:,.0f} req/s, "
              f"p50 {quantiles[49]:.0f} us, p99 {quantiles[98]:.0f} us", flush=True)
        for connections in (1, args.connections):
            rate, cpu = run(throughput(host, port, args.seconds, connections, args.in_flight,
                                          server.pid))
            print(f"{label}: {connections} connection{'s' if connections > 1 else ''} x "
                  f"{args.in_flight} in flight: {rate:,.0f} req/s"
                  + ("" if cpu is None else f", {cpu:.1f} us of server CPU per request"),
                  flush=True)
        if flooded:
            f = run(flood(host, port, args.seconds, server.pid))
            print(f"{label}: flood (1 connection sends {f['sent']:,.0f} and never reads): "
                  f"another's round trips p50 {f['p50']:.0f} us, p99 {f['p99']:.0f} us, "
                  f"max {f['max'] / 1000:.1f} ms; memory {f['rss_before']:.0f} MiB before, "
                  f"{f['rss_peak']:.0f} MiB at most", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


if __name__ == "__main__":
    main()
