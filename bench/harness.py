"""What every benchmark needs to run a bridge and simulators as processes of their own and to
read their cost from ``/proc``: free ports, settings given through the environment, waiting for
a port, stopping, resident memory, CPU time and open file descriptors."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import websockets

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's own side on uvloop, as the bridge runs, so that the load generator's
    event loop costs as little as the bridge's (asyncio's own where uvloop is missing)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_and_rate(pid: int, seconds: float, progress: Callable[[], float],
                       ) -> tuple[float, float]:
    """The process's CPU (percent of one core) and how fast ``progress`` grew (per second)
    over ``seconds`` of wall-clock time: the one way every relay figure is measured."""
    start_cpu, start, before = cpu_seconds(pid), time.perf_counter(), progress()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - start
    return ((cpu_seconds(pid) - start_cpu) / elapsed * 100,
            (progress() - before) / elapsed)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def wait_for_port(port: int, seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return


def spawn(*arguments: str, env: dict[str, str] | None = None,
          stderr: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """``eufy-bridge ARGUMENTS`` (a bridge, or ``simulate ...`` for a simulator) as a process of
    its own, its output discarded (its warnings kept with ``stderr=None``)."""
    return subprocess.Popen([sys.executable, "-m", "bridge", *arguments], env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr)


async def start_bridge(env: dict[str, str], port: int, devices: Iterable[int],
                       stderr: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """A bridge started only once the simulated devices listen on their ``devices`` ports (a
    bridge that looks earlier finds a backend unavailable and tries again only 30 s later), and
    returned once it listens on ``port``."""
    for device in devices:
        await wait_for_port(device, 60)
    bridge = spawn(env=env, stderr=stderr)
    try:
        await wait_for_port(port, 60)
    except BaseException:
        stop_processes(bridge)
        raise
    return bridge


def stop_processes(*processes: subprocess.Popen[bytes] | None) -> None:
    """Stop each process (SIGTERM, then SIGKILL after 10 s); ``None`` stands for one never
    started."""
    for process in processes:
        if process is None:
            continue
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def bridge_env(port: int, data: str, rtsp_port: int, **backends: object) -> dict[str, str]:
    """The environment of a bridge of its own (none of this shell's settings) with the given
    backend sections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUFY_BRIDGE_")}
    env.update({"EUFY_BRIDGE_SERVER__PORT": str(port), "EUFY_BRIDGE_SERVER__DATA_DIR": data,
                "EUFY_BRIDGE_LOG__LEVEL": "warn", "EUFY_BRIDGE_MEDIA__RTSP_PORT": str(rtsp_port)})
    env.update({f"EUFY_BRIDGE_{name.upper()}": orjson.dumps(section).decode()
                for name, section in backends.items()})
    return env


async def bridge_state(url: str, stations: int = 0) -> dict[str, Any]:
    """The bridge's state, as a listening client receives it, once it lists ``stations``
    stations (every backend has reported its devices; a minute at most)."""
    async with asyncio.timeout(60):
        while len((state := await _state(url))["stations"]) < stations:
            await asyncio.sleep(0.2)
    return state


async def _state(url: str) -> dict[str, Any]:
    async with websockets.connect(url) as probe:
        await probe.recv()
        await probe.send('{"command":"set_api_schema","schemaVersion":21}')
        await probe.recv()
        await probe.send('{"messageId":"s","command":"start_listening"}')
        return orjson.loads(await probe.recv())["result"]["state"]
