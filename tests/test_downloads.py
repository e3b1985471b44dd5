"""Recording downloads through the bridge: ``device.start_download`` answers once the clip is
found, then the connection that asked gets ``download started``, every frame of the clip as
``download video data`` / ``download audio data``, and ``download finished``.  Proven by
decoding what the client receives, for one download per device at a time, with cancels,
connections that go, and clients that read slowly."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import av
import pytest
import websockets

from bridge.media.clip import ClipError, demux_now
from tests.doubles import CLIP_FPS, CLIP_SECONDS, DOORBELL, LOCK, RECORDING, clip_mp4
from tests.media import decode_h264
from tests.test_media_audio import pitch, samples_of
from tests.wsclient import PATIENCE, Client, until

CLIP = demux_now(clip_mp4())
VIDEO_FRAMES, AUDIO_FRAMES = CLIP.video_frames, CLIP.audio_frames
START = {"serialNumber": DOORBELL, "path": RECORDING, "cipherId": 0}


async def raw_session(url: str, schema: int) -> websockets.ClientConnection:
    ws = await websockets.connect(url, max_size=None)
    await ws.recv()  # the version hello
    await ws.send(json.dumps({"messageId": "schema", "command": "set_api_schema",
                              "schemaVersion": schema}))
    assert json.loads(await ws.recv())["success"] is True
    return ws


async def messages_until_finished(ws: websockets.ClientConnection) -> list[dict[str, Any]]:
    """Every message, in arrival order, up to and including ``download finished``."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(PATIENCE):
        while not out or out[-1].get("event", {}).get("event") != "download finished":
            out.append(json.loads(await ws.recv()))
    return out


def media(events: list[dict[str, Any]], kind: str) -> list[bytes]:
    return [bytes(e["buffer"]["data"]) for e in events if e["event"] == f"download {kind} data"]


def decode_adts(buffers: list[bytes]) -> list[av.AudioFrame]:
    codec = av.CodecContext.create("aac", "r")
    return [frame for data in buffers for packet in codec.parse(data)
            for frame in codec.decode(packet)]


async def download_events(client: Client) -> list[dict[str, Any]]:
    """This client's download events up to ``download finished``."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(PATIENCE):
        while not found or found[-1]["event"] != "download finished":
            event = await client.events.get()
            if event["event"].startswith("download "):
                found.append(event)
    return found


async def test_a_download_answers_then_sends_the_whole_clip_between_started_and_finished(
        bridge):
    ws = await raw_session(bridge.url, 21)
    await ws.send(json.dumps({"messageId": "get", "command": "device.start_download", **START}))
    messages = await messages_until_finished(ws)
    await ws.close()
    assert messages[0] == {"type": "result", "success": True, "messageId": "get",
                           "result": {"async": True}}
    events = [m["event"] for m in messages[1:]]
    assert all(m["type"] == "event" for m in messages[1:])
    assert events[0] == {"source": "device", "event": "download started",
                         "serialNumber": DOORBELL}
    assert events[-1] == {"source": "device", "event": "download finished",
                          "serialNumber": DOORBELL}
    video = [e for e in events if e["event"] == "download video data"]
    audio = [e for e in events if e["event"] == "download audio data"]
    assert len(video) + len(audio) == len(events) - 2
    assert (len(video), len(audio)) == (VIDEO_FRAMES, AUDIO_FRAMES)  # nothing lost
    assert {json.dumps(e["metadata"]) for e in video} == {json.dumps(
        {"videoCodec": "H264", "videoFPS": CLIP_FPS, "videoHeight": 240, "videoWidth": 320})}
    assert {e["metadata"]["audioCodec"] for e in audio} == {"AAC"}
    assert {e["serialNumber"] for e in events} == {DOORBELL}

    pictures = decode_h264(media(events, "video"))
    assert len(pictures) == VIDEO_FRAMES
    assert len(pictures) / video[0]["metadata"]["videoFPS"] == CLIP_SECONDS
    assert {(p.width, p.height) for p in pictures} == {(320, 240)}
    sound = decode_adts(media(events, "audio"))
    # as long as the clip, plus the encoder's priming and the last frame's padding
    assert CLIP_SECONDS <= sum(f.samples for f in sound) / 16000 <= CLIP_SECONDS + 2 * 1024 / 16000
    assert pitch(samples_of(sound), 16000) == pytest.approx(440, abs=20)  # the clip's tone


async def test_below_schema_13_the_answer_is_empty_and_the_events_are_the_same(
        bridge, connect):
    old = await connect(schema=3)
    assert await old.ok("device.start_download", **START) == {}
    events = await download_events(old)
    assert [e["event"] for e in events[:1]] == ["download started"]
    assert len(media(events, "video")) == VIDEO_FRAMES
    assert len(decode_h264(media(events, "video"))) == VIDEO_FRAMES
    assert await old.error("device.is_downloading", serialNumber=DOORBELL) == "unknown_command"
    older = await connect(schema=2)
    assert await older.error("device.start_download", **START) == "unknown_command"


async def test_one_download_at_a_time_per_device(bridge, connect, backend):
    backend.download_pace = 0.05
    first, second = await connect(), await connect()
    assert (await first.ok("device.is_downloading", serialNumber=DOORBELL))[
        "downloading"] is False
    assert await first.ok("device.start_download", **START) == {"async": True}
    assert await first.ok("device.is_downloading", serialNumber=DOORBELL) == {
        "serialNumber": DOORBELL, "downloading": True}
    assert await first.error("device.start_download", **START) == \
        "device_download_already_running"
    assert await second.error("device.start_download", **START) == \
        "device_only_one_download_at_a_time"
    # nor may the other connection end it
    assert await second.error("device.cancel_download", serialNumber=DOORBELL) == \
        "device_download_not_running"
    assert (await second.ok("device.is_downloading", serialNumber=DOORBELL))["downloading"]
    backend.download_pace = 0.0
    events = await download_events(first)
    assert len(media(events, "video")) == VIDEO_FRAMES
    await until(lambda: not bridge.driver.downloads.downloading(DOORBELL))
    # once it finished, the other connection may download, and nothing reached it before
    assert not [e for e in second.drain() if e["event"].startswith("download")]
    await second.ok("device.start_download", **START)
    assert len(media(await download_events(second), "audio")) == AUDIO_FRAMES


async def test_a_cancel_stops_the_media_and_finished_follows_its_answer(
        bridge, connect, backend):
    backend.download_pace = 0.05
    client = await connect()
    assert await client.error("device.cancel_download", serialNumber=DOORBELL) == \
        "device_download_not_running"
    await client.ok("device.start_download", **START)
    await client.event("download video data")
    assert await client.ok("device.cancel_download", serialNumber=DOORBELL) == {"async": True}
    assert (await client.ok("device.is_downloading", serialNumber=DOORBELL))[
        "downloading"] is False
    events = await download_events(client)  # as the reference server, finished comes
    assert len(media(events, "video")) + len(media(events, "audio")) < \
        VIDEO_FRAMES + AUDIO_FRAMES - 5
    await until(lambda: backend.downloads_ended == 1)
    await asyncio.sleep(0.3)
    assert not client.drain()  # nothing after it
    assert bridge.driver.downloads.running == 0
    assert await client.error("device.cancel_download", serialNumber=DOORBELL) == \
        "device_download_not_running"


async def test_a_missing_recording_is_refused_at_once_and_starts_nothing(
        bridge, connect, backend):
    client = await connect()
    assert await client.error("device.start_download", serialNumber=DOORBELL,
                              path="/recordings/none.mp4", cipherId=0) == \
        "device_invalid_command_value"
    assert await client.error("device.start_download", serialNumber=LOCK, path=RECORDING,
                              cipherId=0) == "device_not_supported"
    assert (await client.ok("device.is_downloading", serialNumber=DOORBELL))[
        "downloading"] is False
    await asyncio.sleep(0.2)
    assert not client.drain()
    assert bridge.driver.downloads.running == 0
    await client.ok("device.start_download", **START)  # the device is free for the next
    await download_events(client)


async def test_a_connection_that_goes_cancels_its_download_and_leaves_no_task(
        bridge, connect, backend):
    backend.download_pace = 0.05
    leaving, other = await connect(), await connect()
    await leaving.ok("device.start_download", **START)
    await leaving.event("download audio data")
    await leaving.close()
    await until(lambda: backend.downloads_ended == 1)
    await until(lambda: bridge.driver.downloads.running == 0)
    assert not bridge.driver.downloads.downloading(DOORBELL)
    backend.download_pace = 0.0
    await other.ok("device.start_download", **START)
    assert len(media(await download_events(other), "video")) == VIDEO_FRAMES


async def test_a_bridge_stopping_tells_the_downloading_client_it_finished(
        bridge, connect, backend):
    backend.download_pace = 0.05
    client = await connect()
    await client.ok("device.start_download", **START)
    await client.event("download video data")
    await bridge.driver.disconnect()
    events = await download_events(client)
    assert events[-1]["event"] == "download finished"
    assert backend.downloads_ended == 1 and bridge.driver.downloads.running == 0


async def test_a_slow_reader_waits_and_loses_nothing(bridge, monkeypatch):
    """The client stops reading mid-download: the bridge holds at most its backlog for it,
    and when the client reads again every frame arrives."""
    monkeypatch.setattr(bridge.driver.downloads, "backlog", 16 * 1024)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up soon
    sock.connect((bridge.server.host, bridge.server.port))
    sock.setblocking(False)
    ws = await websockets.connect(bridge.url, sock=sock, max_size=None, max_queue=1)
    await ws.recv()
    (conn,) = [c for c in bridge.server.connections
               if c.peer.endswith(f":{sock.getsockname()[1]}")]
    conn.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the bridge's side holds little too
    await ws.send(json.dumps({"messageId": "s", "command": "set_api_schema",
                              "schemaVersion": 21}))
    assert json.loads(await ws.recv())["success"]
    ws.transport.pause_reading()  # from now on the client reads nothing
    await ws.send(json.dumps({"messageId": "get", "command": "device.start_download", **START}))
    await until(lambda: conn.backlog() > 16 * 1024)
    await asyncio.sleep(0.5)  # the clip is sent in milliseconds to a client that reads
    largest = max(len(f.data) for f in CLIP.frames) * 4 + 512
    assert conn.backlog() <= 16 * 1024 + largest  # it waits, holding no more than its backlog
    assert bridge.driver.downloads.downloading(DOORBELL)
    ws.transport.resume_reading()
    messages = await messages_until_finished(ws)
    await ws.close()
    events = [m["event"] for m in messages if m["type"] == "event"]
    assert len(media(events, "video")) == VIDEO_FRAMES  # ... and loses nothing
    assert len(media(events, "audio")) == AUDIO_FRAMES
    assert len(decode_h264(media(events, "video"))) == VIDEO_FRAMES


def test_a_file_that_is_no_clip_is_a_clear_error():
    with pytest.raises(ClipError, match="not an MP4"):
        demux_now(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(ClipError, match="not an MP4"):
        demux_now(clip_mp4()[:1000])
    sound_only = _sound_only_mp4()
    with pytest.raises(ClipError, match=r"no H\.264 video"):
        demux_now(sound_only)


def _sound_only_mp4() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.codec_context.layout = "mono"
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
