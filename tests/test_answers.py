"""Every accepted message is answered exactly once, whatever happens below the server; each
connection's session owns its commands; a connection is served within bounds."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import websockets
from structlog.testing import capture_logs

from bridge.app import Bridge
from bridge.settings import load_settings
from tests.doubles import DOORBELL, LOCK, DoorbellBackend
from tests.wsclient import PATIENCE, Client, until


class ClosedUnderTheRequest(DoorbellBackend):
    """A vendor client whose session is closed under its requests: aiohttp then raises
    ``CancelledError`` into them although nobody cancelled the task that waits."""

    async def run_command(self, entity: Any, command: str, params: dict[str, Any]) -> Any:
        if command == "unlock":
            raise asyncio.CancelledError()
        if command == "open":
            raise RuntimeError("a bug in the backend")
        return await super().run_command(entity, command, params)

    async def refresh(self) -> None:
        raise asyncio.CancelledError()


async def test_a_cancellation_from_below_is_answered_as_an_error(bridge_factory):
    bridge = await bridge_factory([ClosedUnderTheRequest()])
    client = await Client.connect(bridge.url, schema=21)
    assert await client.error("device.unlock", serialNumber=LOCK) == "unknown_error"
    reply = await client.command("driver.poll_refresh")
    assert reply["type"] == "result"
    # the connection goes on, and nothing was answered twice
    assert await client.ok("driver.is_connected") == {"connected": True}
    assert client.unmatched == []
    await client.close()


async def test_a_bug_below_a_command_is_answered_unknown_error_and_logged(bridge_factory):
    bridge = await bridge_factory([ClosedUnderTheRequest()])
    client = await Client.connect(bridge.url, schema=21)
    with capture_logs() as logs:
        assert await client.error("device.open", serialNumber=LOCK) == "unknown_error"
    failures = [e for e in logs if e["event"] == "command failed unexpectedly"]
    assert failures and failures[0]["log_level"] == "error" and failures[0].get("exc_info")
    await client.close()


async def test_a_shutdown_answers_the_commands_still_waiting_then_closes(tmp_path):
    settings = load_settings(**{"server.port": 0, "server.data_dir": tmp_path,
                                "server.command_timeout": 60})
    bridge = Bridge(settings, backends=[DoorbellBackend()])
    await bridge.start()
    async with websockets.connect(bridge.url) as ws:
        await ws.recv()
        await ws.send(json.dumps({"command": "set_api_schema", "schemaVersion": 21}))
        await ws.recv()
        await ws.send(json.dumps({"messageId": "live", "command": "device.reset_alarm",
                                  "serialNumber": DOORBELL}))
        await until(lambda: sum(c.session.in_flight for c in bridge.server.connections) == 1)
        await bridge.stop()
        answers = [json.loads(m) async for m in ws]
    results = [a for a in answers if a["type"] == "result"]
    assert results == [{"type": "result", "success": False, "messageId": "live",
                        "errorCode": "unknown_error"}]
    assert ws.close_code == 1001


async def test_the_commands_of_a_connection_end_with_it(bridge):
    client = await Client.connect(bridge.url, schema=21)
    await client.ws.send(json.dumps({"messageId": "live", "command": "device.reset_alarm",
                                     "serialNumber": DOORBELL}))
    (conn,) = bridge.server.connections
    session = conn.session
    await until(lambda: session.in_flight == 1)
    await client.close()
    await until(lambda: session.in_flight == 0)


async def test_commands_beyond_max_in_flight_are_read_when_one_ends(bridge_factory):
    bridge = await bridge_factory([DoorbellBackend()], max_in_flight=1, command_timeout=1.0)
    async with websockets.connect(bridge.url) as ws:
        await ws.recv()
        await ws.send(json.dumps({"command": "set_api_schema", "schemaVersion": 21}))
        await ws.recv()
        for message_id in ("slow1", "slow2"):
            await ws.send(json.dumps({"messageId": message_id,
                                      "command": "device.reset_alarm",
                                      "serialNumber": DOORBELL}))
        await ws.send(json.dumps({"messageId": "quick", "command": "driver.is_connected"}))
        order = []
        async with asyncio.timeout(PATIENCE):
            while len(order) < 3:
                order.append(json.loads(await ws.recv())["messageId"])
    # each waited, unread, for the one before it to end (at its timeout)
    assert order == ["slow1", "slow2", "quick"]


def read_frame(sock: socket.socket, buffer: bytearray) -> bytes:
    """One unmasked server frame's payload from a blocking socket."""
    while True:
        if len(buffer) >= 2:
            size, offset = buffer[1] & 0x7F, 2
            if size == 126 and len(buffer) >= 4:
                size, offset = int.from_bytes(buffer[2:4]), 4
            elif size == 127 and len(buffer) >= 10:
                size, offset = int.from_bytes(buffer[2:10]), 10
            if (size < 126 or offset > 2) and len(buffer) >= offset + size:
                payload = bytes(buffer[offset:offset + size])
                del buffer[:offset + size]
                return payload
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk


async def test_a_burst_stops_while_its_answers_are_not_read_and_all_are_answered_later(bridge):
    count = 3000
    frames = []
    for n in range(count):
        text = json.dumps({"messageId": n, "command": "device.get_properties",
                           "serialNumber": DOORBELL}).encode()
        frames.append(bytes([0x81, 0x80 | 126]) + len(text).to_bytes(2) + b"\0\0\0\0" + text
                      if len(text) >= 126 else
                      bytes([0x81, 0x80 | len(text)]) + b"\0\0\0\0" + text)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # a client that reads nothing
    sock.connect((bridge.server.host, bridge.server.port))
    sock.sendall(b"GET / HTTP/1.1\r\nHost: bridge\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        buffer += await asyncio.to_thread(sock.recv, 4096)
    del buffer[:buffer.index(b"\r\n\r\n") + 4]
    assert json.loads(await asyncio.to_thread(read_frame, sock, buffer))["type"] == "version"
    (conn,) = bridge.server.connections
    conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                       8192)
    sending = asyncio.create_task(asyncio.to_thread(sock.sendall, b"".join(frames)))

    def answered() -> int:
        return sum(n for (name, _), n in bridge.server.command_counts.items()
                   if name == "device.get_properties")

    await until(lambda: answered() > 0)
    seen = -1
    while seen != answered():  # until the bridge has stopped answering
        seen = answered()
        await asyncio.sleep(0.3)
    assert answered() < count // 2
    assert conn.transport.get_write_buffer_size() < 1024 * 1024

    ids = []
    async with asyncio.timeout(PATIENCE * 2):
        while len(ids) < count:
            answer = json.loads(await asyncio.to_thread(read_frame, sock, buffer))
            assert answer["success"] is True
            ids.append(answer["messageId"])
    await sending
    assert ids == list(range(count))  # every one, once, in order
    sock.close()
