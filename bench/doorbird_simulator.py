"""Benchmark of the simulated DoorBird's live streams: the CPU it spends while players watch.

Demo mode runs the simulator beside the bridge on two cores, so its RTSP must stay cheap. The
simulator runs alone in a process of its own (``eufy-bridge simulate doorbird``); PyAV players
in this process play a path over RTSP for a while, and the simulator's CPU time (from
``/proc``, Linux only) over that while is its cost.  With several players the cost should stay
that of one: a path is encoded once for all of them.

The last line holds the figures, ``name=value`` separated by spaces.

    python bench/doorbird_simulator.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
import time

import av

PATHS = {"vga": "/mpeg/media.amp", "720p": "/mpeg/720p/media.amp"}
USER, PASSWORD = "ghxyzw0001", "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch(url: str, stop: threading.Event, counts: list[int], index: int) -> None:
    """Play until told to stop, noting each picture (an access unit may come as several
    packets, one per NAL unit, all with its timestamp)."""
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(20, 20)) as player:
        video = player.streams.video[0]
        seen: set[int | None] = set()
        for packet in player.demux(video):
            if packet.size and packet.pts not in seen:
                seen.add(packet.pts)
                counts[index] += 1
            if stop.is_set():
                return


async def measure(rtsp_port: int, path: str, players: int, seconds: float,
                  pid: int) -> tuple[str, str]:
    """The simulator's CPU (% of a core) and the frames per second each player got."""
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{rtsp_port}{path}"
    stop, counts = threading.Event(), [0] * players
    threads = [threading.Thread(target=watch, args=(url, stop, counts, index))
               for index in range(players)]
    for thread in threads:
        thread.start()
    async with asyncio.timeout(30):  # a player that could not play ends the benchmark
        while not all(counts):
            await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # what players buffered while probing is read: steady state
    before, start, frames = cpu_seconds(pid), time.monotonic(), sum(counts)
    await asyncio.sleep(seconds)
    spent, elapsed = cpu_seconds(pid) - before, time.monotonic() - start
    fps = (sum(counts) - frames) / elapsed / players
    stop.set()
    for thread in threads:
        thread.join()
    await asyncio.sleep(1.0)  # the encoder stops with the last player
    return f"{100 * spent / elapsed:.1f}", f"{fps:.1f}"


async def main(seconds: float) -> None:
    http_port, rtsp_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "simulate", "doorbird", "--http-port", str(http_port),
        "--rtsp-port", str(rtsp_port), "--password", PASSWORD, "--event-port",
        str(free_port()), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        while b"simulator ready" not in await asyncio.wait_for(process.stdout.readline(), 30):
            pass
        before, start = cpu_seconds(process.pid), time.monotonic()
        await asyncio.sleep(seconds / 2)
        idle = 100 * (cpu_seconds(process.pid) - before) / (time.monotonic() - start)
        print(f"idle: {idle:.1f}% of a core")
        figures = {"cpu_percent_idle": f"{idle:.1f}"}
        for name, path in PATHS.items():
            for players in (1, 4):
                cpu, fps = await measure(rtsp_port, path, players, seconds, process.pid)
                print(f"{name} to {players} player(s): {cpu}% of a core, {fps} fps each")
                figures[f"cpu_percent_{name}_{players}"] = cpu
        print(" ".join(f"{key}={value}" for key, value in figures.items()))
    finally:
        process.terminate()
        await process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args().seconds))
