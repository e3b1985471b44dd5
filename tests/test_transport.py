"""The WebSocket transport: handshakes, frames, keep-alive and hostile bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import websockets

from tests.wsclient import Client

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: bridge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def raw_connection(bridge):
    host, port = bridge.server.host, bridge.server.port
    return await asyncio.open_connection(host, port)


async def read_all(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.read()  # until the server closes


async def still_serving(bridge) -> bool:
    client = await Client.connect(bridge.url, schema=21)
    try:
        return (await client.ok("driver.is_connected")) == {"connected": True}
    finally:
        await client.close()


async def test_plain_http_elsewhere_than_the_pages_is_told_to_upgrade(bridge):
    reader, writer = await raw_connection(bridge)
    writer.write(b"GET /nothing-here HTTP/1.1\r\nHost: bridge\r\n\r\n")
    answer = await read_all(reader)
    assert answer.startswith(b"HTTP/1.1 426 Upgrade Required")
    assert await still_serving(bridge)


async def test_garbage_instead_of_a_handshake_is_refused(bridge):
    reader, writer = await raw_connection(bridge)
    writer.write(b"\x00\xff garbage \r\n\r\n")
    answer = await read_all(reader)
    assert answer.startswith(b"HTTP/1.1 400") or answer == b""
    assert await still_serving(bridge)


async def test_invalid_frames_close_only_that_connection(bridge):
    reader, writer = await raw_connection(bridge)
    writer.write(UPGRADE)
    await reader.readuntil(b"\r\n\r\n")
    writer.write(bytes(range(256)) * 4)  # not a valid masked client frame sequence
    await read_all(reader)
    assert await still_serving(bridge)


async def test_fragmented_messages_are_reassembled(bridge):
    async with websockets.connect(bridge.url) as ws:
        await ws.recv()
        await ws.send(['{"messageId":"frag",', '"command":"driver.is_connected"}'])
        reply = json.loads(await ws.recv())
    assert reply["messageId"] == "frag" and reply["result"] == {"connected": True}


async def test_oversized_messages_close_the_connection(bridge):
    async with websockets.connect(bridge.url, max_size=None) as ws:
        await ws.recv()
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send("x" * (bridge.server.max_message_size + 1))
        await ws.wait_closed()
        assert ws.close_code == 1009
    assert await still_serving(bridge)


async def test_a_peer_that_stops_answering_pings_is_dropped(bridge_factory):
    bridge = await bridge_factory([], ping_interval=0.2, ping_timeout=0.2)
    reader, writer = await raw_connection(bridge)
    writer.write(UPGRADE)
    await reader.readuntil(b"\r\n\r\n")
    # never answer: the server must give up within ping_interval + ping_timeout
    data = await read_all(reader, timeout=3)
    assert b"\x89" in data  # it did ping first
    assert bridge.server.connections == set()


async def test_a_live_peer_survives_many_ping_intervals(bridge_factory):
    bridge = await bridge_factory([], ping_interval=0.1, ping_timeout=2.0)
    client = await Client.connect(bridge.url, schema=21)
    await asyncio.sleep(0.6)
    assert await client.ok("driver.is_connected") == {"connected": True}
    await client.close()


async def test_a_client_that_vanishes_is_forgotten(bridge):
    reader, writer = await raw_connection(bridge)
    writer.write(UPGRADE)
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(0.05)
    assert len(bridge.server.connections) == 1
    writer.transport.abort()
    await asyncio.sleep(0.1)
    assert bridge.server.connections == set()


async def test_a_client_that_never_reads_is_not_read_either(bridge):
    """Flow control: with its answers piling up, the bridge stops reading the client."""
    reader, writer = await raw_connection(bridge)
    writer.write(UPGRADE)
    await reader.readuntil(b"\r\n\r\n")
    (conn,) = bridge.server.connections
    conn.transport.set_write_buffer_limits(high=4096)
    frame = b'{"messageId":"x","command":"device.get_properties","serialNumber":"TESTBELL0001"}'
    masked = bytes([0x81, 0x80 | len(frame)]) + b"\0\0\0\0" + frame
    writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)
    writer.transport.pause_reading()  # this client reads nothing
    for _ in range(20000):
        writer.write(masked)
    await asyncio.sleep(0.5)
    # bounded: without flow control the 20000 answers (about 12 MB) would all be buffered
    assert conn.transport.get_write_buffer_size() < 2 * 1024 * 1024
    writer.transport.resume_reading()
    writer.close()
    assert await still_serving(bridge)


async def until(condition, timeout: float = 10.0) -> None:
    """Wait for ``condition()`` to hold, generously: the machine may be busy."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_the_connection_after_the_cap_is_refused_with_503(bridge_factory):
    bridge = await bridge_factory([], max_connections=3)
    clients = [await Client.connect(bridge.url) for _ in range(3)]
    with pytest.raises(websockets.InvalidStatus) as caught:
        await websockets.connect(bridge.url)
    assert caught.value.response.status_code == 503
    reader, writer = await raw_connection(bridge)  # plain HTTP is counted too
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n")
    assert (await read_all(reader)).startswith(b"HTTP/1.1 503")
    await clients.pop().close()
    await until(lambda: len(bridge.server.connections) == 2)
    newcomer = await Client.connect(bridge.url, schema=21)
    assert await newcomer.ok("driver.is_connected") == {"connected": True}
    for client in [*clients, newcomer]:
        await client.close()


async def test_a_peer_that_never_finishes_its_handshake_is_dropped(bridge):
    assert bridge.server.handshake_timeout == 10.0
    bridge.server.handshake_timeout = 0.3
    reader, writer = await raw_connection(bridge)
    writer.write(UPGRADE[:40])  # a request line and part of a header, then nothing
    assert await read_all(reader, timeout=10) == b""
    idle_reader, _ = await raw_connection(bridge)  # nothing at all
    assert await read_all(idle_reader, timeout=10) == b""
    assert await still_serving(bridge)  # a prompt client is not hurried by the deadline


async def test_messages_up_to_one_mebibyte_are_taken(bridge):
    assert bridge.server.max_message_size == 1024 * 1024
    padding = "x" * (1024 * 1024 - 100)
    async with websockets.connect(bridge.url, max_size=None) as ws:
        await ws.recv()
        await ws.send(json.dumps({"messageId": "big", "command": "driver.is_connected",
                                  "padding": padding}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert reply["messageId"] == "big"
