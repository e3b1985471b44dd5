"""Soak benchmark: a busy house for a while, and whether the bridge kept up and lost nothing.

A simulated DoorBird and a simulated SkyBell account with two doorbells run in processes of
their own, as a house's devices are machines of their own, and a bridge for them in another.
This process then, for ``--minutes``:

- keeps ``--clients`` eufy clients connected, each sending a mixed command about every second
  (reads of state, properties, commands and stream status, and a SkyBell setting written back
  with its own value) and timing every answer;
- rings a doorbell every three seconds through its simulator's control hook, the one that has
  rested longest, each slowly enough that no ring can merge with its one before (pulses last
  5 s; a SkyBell's LAN and cloud reports of one ring merge within 20 s), and times each ring
  from the moment its packets left the simulated device (the hook answers it) to the moment its
  bytes reached the last listening client's socket, by the kernel's receive stamp
  (``stamped.py``). One process hosts every client and parses their copies one after another,
  so the time until the last copy was handled here is printed too, with the bridge's own share
  (from its ``/metrics``), before the figures;
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
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any

import aiohttp
import av
import numpy as np
import orjson
import websockets
from harness import (
    bridge_env,
    bridge_state,
    free_port,
    open_fds,
    rss_megabytes,
    run,
    spawn,
    start_bridge,
    stop_processes,
)
from prometheus_client.parser import text_string_to_metric_families
from stamped import StampedConnection

RING_EVERY = 3.0
"""Seconds at least between two rings (of whichever doorbell has rested longest)."""
RING_DEADLINE = 10.0
"""A ring not received by a listening client within this long is lost."""
WATCHERS_PER_CAMERA = 3
RTSP_PLAYERS = 2


class Tally:
    """What every client saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        # (serial, n) -> client -> (moment its bytes arrived, moment it was handled)
        self.rings: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}

    def error(self, what: str) -> None:
        if len(self.errors) < 20:
            print(f"error: {what}", flush=True)
        self.errors.append(what)


class Client:
    """One eufy connection: commands with timed answers, rings noted with the moment their
    bytes reached the client's socket and the moment this process handled them."""

    def __init__(self, index: int, url: str, tally: Tally, rings: dict[str, int]) -> None:
        self.index, self.url, self.tally, self.rings = index, url, tally, rings
        self.ws: StampedConnection | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.listening_since = float("inf")
        self.ids = itertools.count()
        self.video_frames = 0
        self.hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def connect(self) -> dict[str, Any]:
        self.ws = await StampedConnection.open(self.url, self.received)
        await asyncio.wait_for(self.hello, 30)
        await self.command("set_api_schema", schemaVersion=21)
        state = await self.command("start_listening")
        self.listening_since = time.time()
        return state["result"]["state"]

    def received(self, data: bytes, arrived: float) -> None:
        if b'"livestream video data"' in data:
            self.video_frames += 1
            return
        if b'"livestream audio data"' in data:
            return
        body = orjson.loads(data)
        kind = body.get("type")
        if kind == "result":
            future = self.pending.pop(body.get("messageId"), None)
            if future is not None and not future.done():
                future.set_result(body)
        elif kind == "event":
            self.event(body["event"], arrived)
        elif kind == "version" and not self.hello.done():
            self.hello.set_result(None)

    def event(self, event: dict[str, Any], arrived: float) -> None:
        if event.get("event") != "rings" or event.get("state") is not True:
            return
        serial = event["serialNumber"]
        number = self.rings.get(serial)
        if number is None:
            return
        seen = self.tally.rings.setdefault((serial, number), {})
        if self.index in seen:
            self.tally.error(f"client {self.index} got ring {number} of {serial} twice")
        seen[self.index] = (arrived, time.time())

    async def command(self, command: str, **params: Any) -> dict[str, Any]:
        message_id = f"{command}-{next(self.ids)}"
        assert self.ws is not None
        self.ws.send(orjson.dumps({"messageId": message_id, "command": command,
                                   **params}).decode())
        # the answer cannot be read before this coroutine next waits
        future = self.pending[message_id] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(future, 30)

    async def close(self) -> None:
        self.listening_since = float("inf")
        if self.ws is not None:
            await self.ws.close()


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
        except (TimeoutError, ConnectionError) as exc:
            tally.error(f"{name}: {type(exc).__name__}")
        else:
            tally.latencies.append(time.perf_counter() - started)
            if not answer.get("success"):
                tally.error(f"{name}: {answer.get('errorCode')}")
        await asyncio.sleep(0.5 + random.random())


async def ring(http: aiohttp.ClientSession, hook: str) -> float:
    """Ring through a simulated device's own control hook; the wall-clock moment its event
    packets left it."""
    async with http.post(hook) as response:
        answer = await response.json()
        if response.status != 200 or answer.get("sent_at") is None:
            raise RuntimeError(f"{hook} answered {response.status}: {answer}")
        return float(answer["sent_at"])


def quiet_gap(serial: str, skybells: set[str]) -> float:
    """How long a doorbell rests between rings, so that no ring merges with the one before: a
    DoorBird's pulse lasts 5 s, a SkyBell's LAN and cloud reports of one ring merge within 20 s."""
    return 22.0 if serial in skybells else 7.0


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
    """A simulated DoorBird and a simulated SkyBell account with two doorbells, each in its own
    process as the devices of a house are on machines of their own, and a bridge for them."""
    bird_http, bird_rtsp, bird_udp = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    cloud, lan, port, rtsp = free_port(), free_port(socket.SOCK_DGRAM), free_port(), free_port()
    user, password, api_key = "soaku00001", "soak-password", "soak-skybell-key"
    simulators = [
        spawn("simulate", "doorbird", "--http-port", str(bird_http), "--rtsp-port",
              str(bird_rtsp), "--user", user, "--password", password, "--event-port",
              str(bird_udp), "--device-type", "DoorBird D2101V", "--relays", "1,2"),
        spawn("simulate", "skybell", "--port", str(cloud), "--api-key", api_key, "--devices",
              "2", "--udp-port", str(lan))]
    with tempfile.TemporaryDirectory() as data:
        env = bridge_env(port, data, rtsp, doorbird=[{
            "host": f"127.0.0.1:{bird_http}", "username": user, "password": password,
            "event_ports": [bird_udp], "listen_host": "127.0.0.1", "rtsp_port": bird_rtsp}],
            skybell=[{"api_key": api_key, "base_url": f"http://127.0.0.1:{cloud}",
                      "poll_interval": 10, "udp_port": lan, "udp_listen": "127.0.0.1"}])
        bridge = None
        try:
            bridge = await start_bridge(env, port, [bird_http, cloud], stderr=None)
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{cloud}/_sim/state") as answer:
                sim = await answer.json()
            hooks = {d["serial"]: f"http://127.0.0.1:{cloud}/_sim/devices/{device_id}/ring"
                     for device_id, d in sim["devices"].items()}
            bird = f"http://127.0.0.1:{bird_http}/_sim/ring?n=1"
            return await drive(bridge, port, rtsp, clients, minutes, hooks, bird)
        finally:
            stop_processes(bridge, *simulators)


async def drive(bridge: subprocess.Popen[bytes], port: int, rtsp: int, clients: int,
                minutes: float, hooks: dict[str, str], bird: str) -> dict[str, float]:
    """``hooks``: each SkyBell's ring hook by serial; ``bird``: the DoorBird's."""
    url = f"ws://127.0.0.1:{port}"
    await bridge_state(url, stations=len(hooks) + 1)  # every doorbell is a station of its own
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
        next_ring, next_sample = started + 2, started
        last_ring: dict[str, float] = {}
        while time.monotonic() < ends:
            now = time.monotonic()
            if now >= next_sample:
                memory.append((now - started, rss_megabytes(bridge.pid)))
                next_sample += 5
            ready = [s for s in doorbells if now - last_ring.get(s, -1e9) >= quiet_gap(s, skybells)]
            if now >= next_ring and ready:
                serial = min(ready, key=lambda s: last_ring.get(s, -1e9))  # rested longest
                rings[serial] = rings.get(serial, 0) + 1
                last_ring[serial] = now
                sent = await ring(http, hooks.get(serial, bird))
                rung.append((serial, rings[serial], sent))
                next_ring = now + RING_EVERY
            extra = Client(-1, url, Tally(), {})  # a connection opened and dropped
            try:
                await extra.connect()
                await extra.command("driver.is_connected")
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
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
    lost, fanout, first, handled = 0, [], [], []
    for serial, number, moment in rung:
        seen = tally.rings.get((serial, number), {})
        expected = [c for c in crowd if c.listening_since < moment]
        missing = [c for c in expected if c.index not in seen]
        lost += len(missing)
        if seen:
            fanout.append(max(a for a, _ in seen.values()) - moment)
            first.append(min(a for a, _ in seen.values()) - moment)
            handled.append(max(h for _, h in seen.values()) - moment)
    share = await bridge_share(f"http://127.0.0.1:{port}/metrics")
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
    if fanout:
        print(f"ring to first client p50/p99 {ms(first, 50)}/{ms(first, 99)} ms, to last client "
              f"{ms(fanout, 50)}/{ms(fanout, 99)} ms, handled by the last client "
              f"{ms(handled, 50)}/{ms(handled, 99)} ms", flush=True)
    print(share, flush=True)
    return {
        "p50_ms": statistics.median(tally.latencies) * 1000,
        "p99_ms": float(np.percentile(tally.latencies, 99)) * 1000,
        "fanout_p99_ms": float(np.percentile(fanout, 99)) * 1000 if fanout else float("nan"),
        "rss_slope_MB_per_min": slope,
        "fds_end": fds,
        "errors": len(tally.errors),
        "lost_events": lost,
    }


async def bridge_share(metrics_url: str) -> str:
    """The bridge's own part of the fan-out, from its ``/metrics`` histogram: from a ring (or
    its end) reaching the bridge's clients to the last copy handed to a socket."""
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as answer:
        text = await answer.text()
    buckets, total, count = [], 0.0, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "eufy_bridge_event_fanout_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == "eufy_bridge_event_fanout_seconds_sum":
                total = sample.value
            elif sample.name == "eufy_bridge_event_fanout_seconds_count":
                count = sample.value
    if not count:
        return "the bridge's own share: no ring timed"
    bound = min(le for le, cumulative in buckets if cumulative >= 0.99 * count)
    return (f"the bridge's own share ({count:.0f} rings and ends, its /metrics): mean "
            f"{total / count * 1000:.2f} ms, 99 % within {bound * 1000:g} ms")


def ms(values: list[float], percentile: float) -> str:
    return f"{float(np.percentile(values, percentile)) * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    figures = run(soak(args.clients, args.minutes))
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in figures.items()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
