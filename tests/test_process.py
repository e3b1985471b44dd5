"""The bridge as a process: it starts, serves, and shuts down cleanly on a signal."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time

import websockets

from tests.wsclient import Client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_process(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "--port", str(port), "--log-format", "json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    url = f"ws://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            async with websockets.connect(url):
                return process, url
        except OSError:
            if time.monotonic() > deadline or process.returncode is not None:
                raise
            await asyncio.sleep(0.1)


async def test_sigterm_sends_shutdown_to_schema_ten_and_exits_zero():
    process, url = await start_process()
    new = await Client.connect(url, schema=10)
    old = await Client.connect(url, schema=9)
    listening = await Client.connect(url, schema=21, listen=True)
    process.send_signal(signal.SIGTERM)
    assert await new.event("shutdown", timeout=5) == {"source": "server", "event": "shutdown"}
    assert await listening.event("shutdown", timeout=5) == {"source": "server",
                                                             "event": "shutdown"}
    for client in (new, old, listening):
        await asyncio.wait_for(client.closed.wait(), 5)
    assert old.drain() == []
    assert new.ws.close_code == 1001  # going away, a clean close
    _, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert any(line.get("event") == "shutting down" for line in lines)


async def test_sigint_also_exits_cleanly():
    process, _ = await start_process()
    process.send_signal(signal.SIGINT)
    await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0


async def test_json_logs_are_one_object_per_line():
    process, url = await start_process("--log-level", "debug")
    client = await Client.connect(url, schema=21)
    await client.error("device.get_properties", serialNumber="NOPE")
    await client.close()
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 10)
    records = [json.loads(line) for line in stderr.decode().splitlines()]
    refused = [r for r in records if r["event"] == "command refused"]
    assert refused and refused[0]["code"] == "device_not_found"
    assert all({"event", "level", "timestamp"} <= set(r) for r in records)
