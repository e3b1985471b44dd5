"""Running the bridge: demo mode, the page, health, metrics, configuration checks, state
files and the container image."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.app import Bridge
from bridge.storage import StateStore
from tests.doubles import DoorbellBackend
from tests.test_process import free_port
from tests.wsclient import Client

ROOT = Path(__file__).resolve().parents[1]


async def http_get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.content_type, await response.text()


async def http_post(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.post(url) as response:
        return response.status


def page_url(bridge: Bridge) -> str:
    return bridge.url.replace("ws://", "http://")


async def test_demo_mode_shows_a_house_of_doorbells_that_ring(demo):
    client = await Client.connect(demo.url, schema=21, listen=True)
    assert len(client.state["devices"]) >= 5
    assert client.state["driver"]["connected"] is True
    names = set()
    for serial in client.state["devices"]:
        names.add((await client.ok("device.get_properties", serialNumber=serial))[
            "properties"]["model"])
    assert {"DoorBird D2101V", "DoorBird D2101V relay", "SB_TRIM2_0001"} <= names
    _, _, listing = await http_get(page_url(demo) + "/demo/devices")
    doorbells = json.loads(listing)
    for serial in doorbells:
        status = await http_post(f"{page_url(demo)}/demo/ring?serial={serial}")
        assert status == 200
        assert (await client.event("rings", serialNumber=serial, state=True))["state"] is True
    await client.close()


async def test_the_page_is_served_on_the_same_port(demo):
    status, content_type, body = await http_get(page_url(demo) + "/")
    assert status == 200 and content_type == "text/html"
    assert "<script>" in body and "start_listening" in body
    status = await http_post(page_url(demo) + "/demo/ring?serial=nope")
    assert status == 404


async def test_healthz(bridge_factory):
    backend = DoorbellBackend()
    bridge = await bridge_factory([backend])
    status, content_type, body = await http_get(page_url(bridge) + "/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["status"] == "ok"
    backend.__class__ = type("Unreachable", (DoorbellBackend,), {"connected": False})
    status, _, body = await http_get(page_url(bridge) + "/healthz")
    assert status == 503
    assert json.loads(body) == {"status": "unhealthy", "reason": "a backend is unreachable",
                                "backends": [{"vendor": "test", "connected": False}]}


async def test_metrics(bridge_factory):
    bridge = await bridge_factory([DoorbellBackend()])
    client = await Client.connect(bridge.url, schema=21, listen=True)
    await client.ok("driver.is_connected")
    await client.ok("driver.is_connected")
    await client.error("device.get_properties", serialNumber="NOPE")
    bridge.driver.pulse("TESTBELL0001", "ring")
    await client.event("rings")
    status, content_type, text = await http_get(page_url(bridge) + "/metrics")
    assert status == 200 and content_type == "text/plain"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("eufy_bridge_clients", ())] == 1
    assert samples[("eufy_bridge_commands_total", (("command", "driver.is_connected"),
                                                   ("result", "success")))] == 2
    assert samples[("eufy_bridge_commands_total", (("command", "device.get_properties"),
                                                   ("result", "device_not_found")))] == 1
    assert samples[("eufy_bridge_events_sent_total", ())] >= 1
    assert samples[("eufy_bridge_queue_drops_total", ())] == 0
    assert samples[("eufy_bridge_livestreams_active", ())] == 0
    # the ring's fan-out was timed, the property change that went with it was not
    assert samples[("eufy_bridge_event_fanout_seconds_count", ())] == 1
    assert 0 < samples[("eufy_bridge_event_fanout_seconds_sum", ())] < 1
    assert samples[("eufy_bridge_event_fanout_seconds_bucket", (("le", "+Inf"),))] == 1
    await client.close()


def test_state_files_are_atomic_private_and_survive_corruption(tmp_path):
    store = StateStore(tmp_path / "state")
    store.save("skybell-x", {"cursor_ms": 5, "tokens": {"id_token": "t"}})
    path = tmp_path / "state" / "skybell-x.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert store.load("skybell-x")["cursor_ms"] == 5
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["skybell-x.json"]
    path.write_text("{not json")
    assert store.load("skybell-x") == {}
    assert (tmp_path / "state" / "skybell-x.corrupt").exists()
    store.save("skybell-x", {"cursor_ms": 6})
    assert store.load("skybell-x") == {"cursor_ms": 6}
    with pytest.raises(ValueError):
        store.load("../escape")


async def run_cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUFY_BRIDGE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_check_config_tries_each_backend(tmp_path):
    from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator

    sim = DoorBirdSimulator(DoorBirdConfig(event_ports=[free_port()]))
    await sim.start()
    try:
        good = tmp_path / "good.yaml"
        good.write_text(f"doorbird:\n  - host: {sim.address}\n    username: {sim.config.user}\n"
                        f"    password: {sim.config.password}\n    events: monitor\n")
        code, out, _ = await run_cli("--check-config", str(good))
        assert code == 0, out
        assert "doorbird: ok" in out and f"station {sim.config.mac}" in out
        bad = tmp_path / "bad.yaml"
        bad.write_text(good.read_text().replace(sim.config.password, "wrong-one"))
        code, out, _ = await run_cli("--check-config", str(bad))
        assert code == 1 and "doorbird: FAILED" in out and "wrong-one" not in out
    finally:
        await sim.stop()


async def test_no_configuration_means_demo_mode(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EUFY_BRIDGE_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "--port", str(port), "--visitors", "0",
        "--data-dir", str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        banner = b""
        async with asyncio.timeout(30):
            while b"stop:" not in banner:
                banner += await process.stdout.readline()
        assert f"ws://127.0.0.1:{port}".encode() in banner
        client = await Client.connect(f"ws://127.0.0.1:{port}", schema=21, listen=True)
        assert len(client.state["devices"]) == 5
        await client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)
    assert process.returncode == 0


def test_the_container_installs_the_project_as_the_readme_does():
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"pip install \.(\s|&&|$)", readme.split("\n```sh\n", 1)[1].split("```")[0])
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert len(stages) == 2 and all(s.startswith("python:3.11-slim") for s in stages)
    assert re.search(r"pip install --no-cache-dir \.$", dockerfile, re.M)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "EXPOSE 3000" in dockerfile and "VOLUME /data" in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)
    cmd = json.loads(re.search(r"^CMD (.+)$", dockerfile, re.M).group(1))
    assert cmd[0] == "eufy-bridge" and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M)
    sources = {part for line in copied for part in line.split()}
    assert {"pyproject.toml", "bridge", "schemas"} <= sources
    assert "docker build" in readme and "--network host" in readme


async def test_disconnect_and_connect_with_the_real_backends(demo):
    client = await Client.connect(demo.url, schema=21, listen=True)
    assert await client.ok("driver.disconnect") == {}
    await client.event("disconnected")
    assert (await client.ok("driver.is_push_connected"))["connected"] is False
    assert await client.ok("driver.connect") == {"result": True}
    await client.event("connected")
    assert (await client.ok("driver.is_push_connected"))["connected"] is True
    _, _, listing = await http_get(page_url(demo) + "/demo/devices")
    for serial in json.loads(listing):
        assert await http_post(f"{page_url(demo)}/demo/ring?serial={serial}") == 200
        await client.event("rings", serialNumber=serial, state=True)
    await client.close()
