"""Soak benchmark: a busy house for a while, and whether the bridge kept up and lost nothing.

A bridge runs the demo house (a simulated DoorBird and SkyBell account) in its own process.
This process then, for ``--minutes``:

- keeps ``--clients`` eufy clients connected, each sending a mixed command about every second
  (reads of state, properties, commands and stream status, and a SkyBell setting written back
  with its own value) and timing every answer;
- rings a doorbell every few seconds through the demo's controls, rotating over the three
  doorbells slowly enough that no ring can merge with the one before (pulses last 5 s; a
  SkyBell's LAN and cloud reports of one ring merge within 20 s), and times how long each ring
  takes to reach the last listening client;
- keeps one live stream per camera open to a few of those clients, and two RTSP players
  (PyAV) reading a camera from the bridge's RTSP server;
- drops and reopens one extra connection every second;
- samples the bridge's resident memory every few seconds.

It ends with one line, ``p50_ms=… p99_ms=… fanout_p99_ms=… rss_slope_MB_per_min=… fds_end=…
errors=… lost_events=…``: command round trips, ring fan-out, the memory trend after the first
fifth of the run, the bridge's open file descriptors once every client has gone, failed or
unanswered commands (and doubled rings, broken streams, players that stopped), and rings some
listening client never received.

    python bench/soak.py [--clients 100] [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import orjson
import websockets

RING_EVERY = 3.0
"""Seconds between rings (of the next doorbell in turn)."""
RING_DEADLINE = 10.0
"""A ring not received by a listening client within this long is lost."""
WATCHERS_PER_CAMERA = 3
RTSP_PLAYERS = 2


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Tally:
    """What every client saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.rings: dict[tuple[str, int], dict[int, float]] = {}  # (serial, n) -> client -> t

    def error(self, what: str) -> None:
        if len(self.errors) < 20:
            print(f"error: {what}", flush=True)
        self.errors.append(what)


class Client:
    """One eufy connection: commands with timed answers, rings noted."""

    def __init__(self, index: int, url: str, tally: Tally, rings: dict[str, int]) -> None:
        self.index, self.url, self.tally, self.rings = index, url, tally, rings
        self.ws: Any = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.listening_since = float("inf")
        self.ids = itertools.count()
        self.video_frames = 0
        self.reader: asyncio.Task[None] | None = None

    async def connect(self) -> dict[str, Any]:
        self.ws = await websockets.connect(self.url, max_size=None, ping_interval=None)
        await self.ws.recv()
        self.reader = asyncio.ensure_future(self.read())
        await self.command("set_api_schema", schemaVersion=21)
        state = await self.command("start_listening")
        self.listening_since = time.monotonic()
        return state["result"]["state"]

    async def read(self) -> None:
        try:
            async for message in self.ws:
                data = message if isinstance(message, bytes) else message.encode()
                if b'"livestream video data"' in data:
                    self.video_frames += 1
                    continue
                if b'"livestream audio data"' in data:
                    continue
                body = orjson.loads(data)
                if body.get("type") == "result":
                    future = self.pending.pop(body.get("messageId"), None)
                    if future is not None and not future.done():
                        future.set_result(body)
                elif body.get("type") == "event":
                    self.event(body["event"])
        except websockets.ConnectionClosed:
            pass

    def event(self, event: dict[str, Any]) -> None:
        if event.get("event") != "rings" or event.get("state") is not True:
            return
        serial = event["serialNumber"]
        number = self.rings.get(serial)
        if number is None:
            return
        seen = self.tally.rings.setdefault((serial, number), {})
        if self.index in seen:
            self.tally.error(f"client {self.index} got ring {number} of {serial} twice")
        seen[self.index] = time.monotonic()

    async def command(self, command: str, **params: Any) -> dict[str, Any]:
        message_id = f"{command}-{next(self.ids)}"
        future = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        await self.ws.send(orjson.dumps({"messageId": message_id, "command": command,
                                         **params}).decode())
        return await asyncio.wait_for(future, 30)

    async def close(self) -> None:
        self.listening_since = float("inf")
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.wait([self.reader], timeout=5)


async def chatter(client: Client, state: dict[str, Any], skybells: list[str], tally: Tally,
                  until: float) -> None:
    """Mixed commands, about one a second, each answer timed."""
    devices, stations = state["devices"], state["stations"]
    choices = [
        ("driver.is_connected", lambda: {}),
        ("device.get_properties", lambda: {"serialNumber": random.choice(devices)}),
        ("station.get_properties", lambda: {"serialNumber": random.choice(stations)}),
        ("device.get_commands", lambda: {"serialNumber": random.choice(devices)}),
        ("device.is_livestreaming", lambda: {"serialNumber": random.choice(devices)}),
        ("device.set_property", lambda: {"serialNumber": random.choice(skybells),
                                         "name": "chimeTone", "value": 1}),
    ]
    await asyncio.sleep(random.random())
    while time.monotonic() < until:
        name, params = random.choice(choices)
        started = time.perf_counter()
        try:
            answer = await client.command(name, **params())
        except (TimeoutError, websockets.ConnectionClosed) as exc:
            tally.error(f"{name}: {type(exc).__name__}")
        else:
            tally.latencies.append(time.perf_counter() - started)
            if not answer.get("success"):
                tally.error(f"{name}: {answer.get('errorCode')}")
        await asyncio.sleep(0.5 + random.random())


async def ring(http: aiohttp.ClientSession, base: str, serial: str) -> None:
    async with http.post(f"{base}/demo/ring", params={"serial": serial}) as response:
        if response.status != 200:
            raise RuntimeError(f"demo ring answered {response.status}")


def play_rtsp(url: str, stop: threading.Event, frames: list[int], failures: list[str]) -> None:
    """A PyAV player reading the bridge's RTSP stream until ``stop``."""
    try:
        with av.open(url, options={"rtsp_transport": "tcp"}, timeout=30) as container:
            for packet in container.demux(video=0):
                if packet.size:
                    frames[0] += 1
                if stop.is_set():
                    return
        failures.append("the RTSP stream ended early")
    except Exception as exc:
        failures.append(f"RTSP player: {type(exc).__name__}: {exc}")


async def soak(clients: int, minutes: float) -> dict[str, float]:
    port, rtsp = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EUFY_BRIDGE_")}
        env.update({"EUFY_BRIDGE_MEDIA__RTSP_PORT": str(rtsp),
                    "EUFY_BRIDGE_LOG__LEVEL": "warn"})
        bridge = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--demo", "--visitors", "0", "--port", str(port),
             "--data-dir", data], env=env, stdout=subprocess.DEVNULL)
        try:
            return await drive(bridge, port, rtsp, clients, minutes)
        finally:
            bridge.send_signal(signal.SIGTERM)
            try:
                bridge.wait(15)
            except subprocess.TimeoutExpired:
                bridge.kill()


async def drive(bridge: subprocess.Popen[bytes], port: int, rtsp: int, clients: int,
                minutes: float) -> dict[str, float]:
    url, base = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    async with asyncio.timeout(60):
        while True:
            try:
                async with websockets.connect(url) as probe:
                    await probe.recv()
                    break
            except OSError:
                await asyncio.sleep(0.2)
    tally, rings = Tally(), {}
    crowd = [Client(i, url, tally, rings) for i in range(clients)]
    states = await asyncio.gather(*(c.connect() for c in crowd))
    state = states[0]
    cameras, skybells = [], set()
    for serial in state["devices"]:
        commands = (await crowd[0].command("device.get_commands", serialNumber=serial))
        if "start_livestream" in commands["result"]["commands"]:
            cameras.append(serial)
        properties = await crowd[0].command("device.get_properties", serialNumber=serial)
        if str(properties["result"]["properties"].get("model", "")).startswith("SB_"):
            skybells.add(serial)
    doorbells = list(cameras)
    ends = time.monotonic() + minutes * 60
    for index, camera in enumerate(cameras):  # a few clients watch each camera
        for watcher in crowd[index * WATCHERS_PER_CAMERA:(index + 1) * WATCHERS_PER_CAMERA]:
            answer = await watcher.command("device.start_livestream", serialNumber=camera)
            if not answer.get("success"):
                tally.error(f"start_livestream {camera}: {answer.get('errorCode')}")
    stop_players = threading.Event()
    player_frames, failures = [[0] for _ in range(RTSP_PLAYERS)], []
    players = [threading.Thread(target=play_rtsp, args=(
        f"rtsp://127.0.0.1:{rtsp}/{cameras[i % len(cameras)]}", stop_players, player_frames[i],
        failures), daemon=True) for i in range(RTSP_PLAYERS)]
    for player in players:
        player.start()
    talk = [asyncio.ensure_future(chatter(c, state, sorted(skybells), tally, ends))
            for c in crowd]
    memory: list[tuple[float, float]] = []
    started = time.monotonic()
    churned = 0
    async with aiohttp.ClientSession() as http:
        rung: list[tuple[str, int, float]] = []
        next_ring, next_sample, turn = started + 2, started, 0
        last_ring: dict[str, float] = {}
        while time.monotonic() < ends:
            now = time.monotonic()
            if now >= next_sample:
                memory.append((now - started, rss_megabytes(bridge.pid)))
                next_sample += 5
            if now >= next_ring:
                for _ in doorbells:  # the next doorbell whose last ring is long enough ago
                    serial = doorbells[turn % len(doorbells)]
                    turn += 1
                    gap = 22 if serial in skybells else 7
                    if now - last_ring.get(serial, -1e9) >= gap:
                        rings[serial] = rings.get(serial, 0) + 1
                        last_ring[serial] = now
                        rung.append((serial, rings[serial], time.monotonic()))
                        await ring(http, base, serial)
                        break
                next_ring += RING_EVERY
            extra = Client(-1, url, Tally(), {})  # a connection opened and dropped
            try:
                await extra.connect()
                await extra.command("driver.is_connected")
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                tally.error(f"churn connection: {type(exc).__name__}")
            await extra.close()
            churned += 1
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
        await asyncio.gather(*talk)
        await asyncio.sleep(RING_DEADLINE)  # the last rings' stragglers
    stop_players.set()
    for player in players:
        await asyncio.to_thread(player.join, 30)
    for failure in failures:
        tally.error(failure)
    for index, frames in enumerate(player_frames):
        if frames[0] < 10:
            tally.error(f"RTSP player {index} got {frames[0]} frames")
    for index, camera in enumerate(cameras):
        for watcher in crowd[index * WATCHERS_PER_CAMERA:(index + 1) * WATCHERS_PER_CAMERA]:
            if watcher.video_frames < 10:
                tally.error(f"a client watching {camera} got {watcher.video_frames} frames")
    lost, fanout = 0, []
    for serial, number, moment in rung:
        seen = tally.rings.get((serial, number), {})
        expected = [c for c in crowd if c.listening_since < moment]
        missing = [c for c in expected if c.index not in seen]
        lost += len(missing)
        if seen:
            fanout.append(max(seen.values()) - moment)
    await asyncio.gather(*(c.close() for c in crowd))
    await asyncio.sleep(2)
    fds = open_fds(bridge.pid)
    warm = [(t, m) for t, m in memory if t >= (ends - started) / 5]
    slope = float(np.polyfit([t for t, _ in warm], [m for _, m in warm], 1)[0] * 60) \
        if len(warm) >= 3 else float("nan")
    print(f"{clients} clients for {minutes:g} min: {len(tally.latencies)} commands, "
          f"{len(rung)} rings, {churned} connections opened and dropped, RTSP frames "
          f"{[f[0] for f in player_frames]}, memory {memory[0][1]:.0f} -> "
          f"{memory[-1][1]:.0f} MB", flush=True)
    return {
        "p50_ms": statistics.median(tally.latencies) * 1000,
        "p99_ms": float(np.percentile(tally.latencies, 99)) * 1000,
        "fanout_p99_ms": float(np.percentile(fanout, 99)) * 1000 if fanout else float("nan"),
        "rss_slope_MB_per_min": slope,
        "fds_end": fds,
        "errors": len(tally.errors),
        "lost_events": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    figures = asyncio.run(soak(args.clients, args.minutes))
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in figures.items()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
