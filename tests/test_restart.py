"""A bridge killed with SIGKILL at random moments of a busy run starts again with its tokens
and its place in the SkyBell activity feed intact, and reports the rings of while it was down
exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from random import Random

import pytest

from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from tests.skybell_rig import free_udp_port
from tests.test_doorbird_backend import free_tcp_port
from tests.wsclient import PATIENCE

FRONT, BACK = "A3BAB00001", "A3BAB00002"


@pytest.fixture
async def cloud():
    sim = SkyBellSimulator(CloudConfig(udp_port=free_udp_port()))
    await sim.start()
    yield sim
    await sim.stop()


def start_bridge(sim: SkyBellSimulator, data: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUFY_BRIDGE_")}
    env.update({
        "EUFY_BRIDGE_SERVER__PORT": str(port), "EUFY_BRIDGE_SERVER__DATA_DIR": str(data),
        "EUFY_BRIDGE_MEDIA__RTSP": "false", "EUFY_BRIDGE_SERVER__EVENT_SECONDS": "0.2",
        "EUFY_BRIDGE_SKYBELL": json.dumps([{
            "email": sim.config.email, "password": sim.config.password,
            "base_url": sim.url, "udp_port": 0, "poll_interval": 0.2}])})
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bridge", "--log-format", "json"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


async def running(port: int) -> None:
    async with asyncio.timeout(PATIENCE):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


def reported(log: Path, serial: str) -> int:
    count = 0
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "device event" and record.get("serial") == serial \
                and record.get("kind") == "ring":
            count += 1
    return count


async def test_killed_at_random_it_keeps_tokens_and_cursor_and_misses_nothing(cloud, tmp_path):
    random, port, log = Random(11), free_tcp_port(), tmp_path / "bridge.log"
    device = {d.serial: d for d in cloud.cloud.devices.values()}
    busy_rings = down_rings = 0
    for _ in range(3):
        bridge = start_bridge(cloud, tmp_path / "data", port, log)
        try:
            await running(port)
            await asyncio.sleep(0.5)  # started: polling and writing its cursor
            for _ in range(random.randint(1, 3)):
                cloud.cloud.event(device[FRONT], "doorbell")
                busy_rings += 1
                await asyncio.sleep(random.uniform(0.05, 0.6))
        finally:
            bridge.send_signal(signal.SIGKILL)
            await asyncio.to_thread(bridge.wait)
        for _ in range(2):  # while it is down
            cloud.cloud.event(device[BACK], "doorbell")
            down_rings += 1
            await asyncio.sleep(0.05)
    bridge = start_bridge(cloud, tmp_path / "data", port, log)
    try:
        await running(port)
        async with asyncio.timeout(PATIENCE):
            while reported(log, BACK) < down_rings:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a few more polls: nothing more may come
    finally:
        bridge.send_signal(signal.SIGTERM)
        await asyncio.to_thread(bridge.wait, 10)
    assert reported(log, BACK) == down_rings
    assert reported(log, FRONT) >= busy_rings  # reported before each kill, or after it
    assert cloud.cloud.logins == 1  # its tokens survived every kill
    assert "corrupt" not in log.read_text()
