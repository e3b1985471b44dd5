"""Live streams through the bridge: one shared upstream per device, any number of watching
connections, media only to them, proven by decoding what the clients receive."""

from __future__ import annotations

import asyncio

from bridge.driver.errors import StationConnectionTimeout
from tests.doubles import DOORBELL, LOCK
from tests.media import HEIGHT, WIDTH, decode_h264, media_events, payloads
from tests.wsclient import until


async def test_a_started_stream_decodes_with_its_metadata(bridge, connect):
    client = await connect()
    assert await client.ok("device.start_livestream", serialNumber=DOORBELL) == {"async": True}
    assert (await client.event("livestream started"))["serialNumber"] == DOORBELL
    events = await media_events(client, "video", 50)
    assert events[0]["buffer"]["type"] == "Buffer"
    assert events[0]["metadata"] == {"videoCodec": "H264", "videoFPS": 20,
                                     "videoHeight": HEIGHT, "videoWidth": WIDTH}
    decoded = decode_h264(payloads(events))
    assert len(decoded) >= 48  # the decoder may hold the last frame or two
    assert {(f.width, f.height) for f in decoded} == {(WIDTH, HEIGHT)}
    assert (await client.ok("device.is_livestreaming", serialNumber=DOORBELL))["livestreaming"]


async def test_connections_share_one_upstream_and_a_late_joiner_starts_at_a_key_frame(
        bridge, connect, backend):
    first, late, bystander = await connect(), await connect(), await connect(listen=True)
    await first.ok("device.start_livestream", serialNumber=DOORBELL)
    await media_events(first, "video", 15)
    await late.ok("device.start_livestream", serialNumber=DOORBELL)
    await late.event("livestream started")
    joined = await media_events(late, "video", 30)
    first_unit = payloads(joined)[0]
    assert first_unit.startswith(b"\0\0\0\1") and first_unit[4] & 0x1F == 7  # SPS: a key frame
    assert len(decode_h264(payloads(joined))) >= 28  # decodes from its first frame on
    assert backend.streams_started == 1
    # media goes only to the watchers, even to a connection that listens to every event
    await asyncio.sleep(0.3)
    assert not [e for e in bystander.drain() if e["event"].startswith("livestream")]

    # the first one leaving does not stop it for the other
    await first.ok("device.stop_livestream", serialNumber=DOORBELL)
    await first.event("livestream stopped")
    await media_events(late, "video", 10)
    assert backend.streams_ended == 0
    await late.ok("device.stop_livestream", serialNumber=DOORBELL)
    await until(lambda: backend.streams_ended == 1)
    assert (await late.ok("device.is_livestreaming", serialNumber=DOORBELL))[
        "livestreaming"] is False


async def test_starting_twice_and_stopping_what_was_not_started_are_refused(bridge, connect):
    watcher, other = await connect(), await connect()
    assert await other.error("device.stop_livestream", serialNumber=DOORBELL) == \
        "device_livestream_not_running"
    await watcher.ok("device.start_livestream", serialNumber=DOORBELL)
    assert await watcher.error("device.start_livestream", serialNumber=DOORBELL) == \
        "device_livestream_already_running"
    # another connection cannot stop it for the one watching
    assert await other.error("device.stop_livestream", serialNumber=DOORBELL) == \
        "device_livestream_not_running"
    await media_events(watcher, "video", 5)
    assert await watcher.error("device.start_livestream", serialNumber=LOCK) == \
        "device_not_supported"


async def test_an_upstream_that_dies_ends_with_livestream_stopped(bridge, connect, backend):
    backend.stream_fails = 12
    first, second = await connect(), await connect()
    await first.ok("device.start_livestream", serialNumber=DOORBELL)
    await second.ok("device.start_livestream", serialNumber=DOORBELL)
    for client in (first, second):
        assert (await client.event("livestream stopped"))["serialNumber"] == DOORBELL
    assert (await first.ok("device.is_livestreaming", serialNumber=DOORBELL))[
        "livestreaming"] is False
    # the connection may start it again
    backend.stream_fails = None
    await first.ok("device.start_livestream", serialNumber=DOORBELL)
    await media_events(first, "video", 5)


async def test_a_stream_that_cannot_start_answers_its_error(bridge, connect, backend):
    backend.stream_start_error = StationConnectionTimeout("the doorbell is asleep")
    client = await connect()
    assert await client.error("device.start_livestream", serialNumber=DOORBELL) == \
        "station_connection_timeout"
    backend.stream_start_error = None
    await client.ok("device.start_livestream", serialNumber=DOORBELL)


async def test_a_connection_that_goes_stops_its_stream(bridge, connect, backend):
    client = await connect()
    await client.ok("device.start_livestream", serialNumber=DOORBELL)
    await media_events(client, "video", 3)
    await client.close()
    await until(lambda: backend.streams_ended == 1)
    assert not bridge.driver.streams.is_streaming(DOORBELL)


async def test_a_client_that_never_reads_loses_frames_not_memory(bridge, connect, monkeypatch):
    import socket

    import websockets

    from bridge.server import livestream

    monkeypatch.setattr(livestream, "MEDIA_BACKLOG", 32 * 1024)
    host, port = bridge.server.host, bridge.server.port
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up soon
    sock.connect((host, port))
    sock.setblocking(False)
    lazy = await websockets.connect(bridge.url, sock=sock, max_size=None, max_queue=1)
    await lazy.recv()
    await lazy.send('{"command":"set_api_schema","schemaVersion":21}')
    await lazy.recv()
    await lazy.send('{"messageId":"s","command":"device.start_livestream",'
                    f'"serialNumber":"{DOORBELL}"}}')
    (lazy_conn,) = [c for c in bridge.server.connections
                    if c.peer.endswith(f":{sock.getsockname()[1]}")]
    await until(lambda: DOORBELL in lazy_conn.session.livestreams)
    lazy.transport.pause_reading()  # from now on the client reads nothing
    reader = await connect()
    await reader.ok("device.start_livestream", serialNumber=DOORBELL)
    # five seconds of video while the other never reads
    events = await media_events(reader, "video", 100)
    assert len(decode_h264(payloads(events))) >= 98  # the reader lost nothing
    watcher = lazy_conn.session.livestreams[DOORBELL]
    assert watcher.gate.skipped > 0  # the lazy one lost frames ...
    largest = max(len(e["buffer"]["data"]) for e in events) * 4 + 512
    assert lazy_conn.backlog() <= livestream.MEDIA_BACKLOG + largest  # ... not memory
    started = asyncio.get_running_loop().time()
    assert await reader.ok("driver.is_connected") == {"connected": True}
    assert asyncio.get_running_loop().time() - started < 5.0  # answered, not stuck behind
    lazy.transport.abort()


async def test_the_metrics_count_running_streams(bridge, connect):
    from tests.test_operations import http_get, page_url

    client = await connect()
    await client.ok("device.start_livestream", serialNumber=DOORBELL)
    await media_events(client, "video", 2)
    _, _, text = await http_get(page_url(bridge) + "/metrics")
    assert "eufy_bridge_livestreams_active 1.0" in text
