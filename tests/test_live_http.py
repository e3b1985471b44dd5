"""Live video over HTTP on the bridge's port, against the demo house's DoorBird (its simulator
streams 720p H.264 and µ-law sound over RTSP; the bridge passes the video through and turns the
sound into AAC): real sockets, PyAV as the player, every task and socket released."""

from __future__ import annotations

import asyncio
import io
import socket
from types import SimpleNamespace

import aiohttp
import av

from bridge.app import Bridge
from bridge.media.hub import VideoFrame, VideoInfo
from bridge.server import live_http
from tests.leaks import resources, settled
from tests.media import h264_access_units
from tests.test_operations import page_url
from tests.test_page import TOKEN, guarded_demo  # noqa: F401  (a fixture: the house, guarded)

PATIENCE = 60.0


def camera(bridge: Bridge) -> str:
    """The demo's DoorBird doorbell: the camera with a live stream."""
    return next(d.serial for d in bridge.driver.devices.values()
                if "start_livestream" in d.commands and d.serial.startswith("1CCAE3"))


def play(url: str, count: int) -> tuple[list[av.VideoFrame], list[str]]:
    """Decode ``count`` video frames of ``url`` as a player would; the streams it found."""
    frames: list[av.VideoFrame] = []
    with av.open(url, timeout=30) as container:
        kinds = [f"{s.type}:{s.codec_context.name}" for s in container.streams]
        for packet in container.demux(video=0):
            frames.extend(packet.decode())
            if len(frames) >= count:
                break
    return frames, kinds


async def wait_until(condition, seconds: float = PATIENCE) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)


def released(bridge: Bridge, serial: str) -> bool:
    """Nobody watches over HTTP any more and the upstream has stopped."""
    live = bridge.server.live
    return not live.streams and not live.viewers and not bridge.driver.streams.is_streaming(
        serial) and not bridge.server._admitted


async def test_pyav_plays_the_doorbirds_live_mp4_with_its_sound(demo):
    serial = camera(demo)
    frames, kinds = await asyncio.to_thread(play, f"{page_url(demo)}/live/{serial}.mp4", 60)
    assert len(frames) >= 50
    assert (frames[0].width, frames[0].height) == (1280, 720)
    assert kinds == ["video:h264", "audio:aac"]
    await wait_until(lambda: released(demo, serial))


async def test_a_late_player_joins_the_same_muxed_stream_at_a_key_frame(demo):
    serial = camera(demo)
    url = f"{page_url(demo)}/live/{serial}.mp4"
    live = demo.server.live
    first = asyncio.ensure_future(asyncio.to_thread(play, url, 100))
    await wait_until(lambda: serial in live.streams and live.streams[serial].init is not None)
    await asyncio.sleep(1.5)  # the first player is well into the stream
    stream = live.streams[serial]
    frames, _ = await asyncio.to_thread(play, url, 30)  # starts cleanly mid-stream
    assert len(frames) >= 30
    assert live.streams.get(serial) is stream  # one subscription, one muxer for both
    assert len((await first)[0]) >= 100
    await wait_until(lambda: released(demo, serial))


async def test_the_still_is_a_jpeg_of_the_streams_size(demo):
    serial = camera(demo)
    async with aiohttp.ClientSession() as http, \
            http.get(f"{page_url(demo)}/live/{serial}.jpg") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        body = await response.read()
    with av.open(io.BytesIO(body)) as container:
        picture = next(container.decode(video=0))
    assert container.format.name.startswith("image2") or "jpeg" in container.format.name
    assert (picture.width, picture.height) == (1280, 720)
    await wait_until(lambda: released(demo, serial))


async def test_what_is_no_camera_is_not_found(demo):
    relay = next(d.serial for d in demo.driver.devices.values()
                 if "start_livestream" not in d.commands)
    async with aiohttp.ClientSession() as http:
        for path in ("/live/NOPE.mp4", f"/live/{relay}.mp4", f"/live/{camera(demo)}.avi"):
            async with http.get(page_url(demo) + path) as response:
                assert response.status == 404, path


async def test_live_needs_the_token_when_the_bridge_has_one(guarded_demo):  # noqa: F811
    serial = camera(guarded_demo)
    base = f"{page_url(guarded_demo)}/live/{serial}"
    async with aiohttp.ClientSession() as http:
        for url, headers in ((f"{base}.mp4", {}), (f"{base}.mp4?token=wrong", {}),
                             (f"{base}.jpg", {}),
                             (f"{base}.mp4", {"Authorization": "Bearer wrong"})):
            async with http.get(url, headers=headers) as response:
                assert response.status == 401, url
        async with http.get(f"{base}.mp4", headers={"Authorization": f"Bearer {TOKEN}"}) \
                as response:
            assert response.status == 200
            assert (await response.content.readexactly(8))[4:] == b"ftyp"
    frames, _ = await asyncio.to_thread(play, f"{base}.mp4?token={TOKEN}", 5)
    assert len(frames) >= 5
    await wait_until(lambda: released(guarded_demo, serial))


def raw_get(port: int, path: str, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


async def test_a_dropped_connection_releases_its_task_socket_and_the_upstream(demo):
    serial = camera(demo)
    before = resources()
    sock = raw_get(demo.server.port, f"/live/{serial}.mp4")
    sock.settimeout(PATIENCE)
    received = b""
    while b"moof" not in received:  # the answer has begun and media flows
        received += await asyncio.to_thread(sock.recv, 65536)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: video/mp4" in received
    assert demo.driver.streams.is_streaming(serial)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # a reset, as when a player is killed
    await wait_until(lambda: released(demo, serial))
    await settled(before)


async def test_a_player_that_never_reads_skips_fragments_then_is_cut_off(demo, monkeypatch):
    monkeypatch.setattr(live_http, "LIVE_BACKLOG", 64 * 1024)
    monkeypatch.setattr(live_http, "STALLED", 3.0)
    serial = camera(demo)
    stalled = raw_get(demo.server.port, f"/live/{serial}.mp4", receive_buffer=4096)
    live = demo.server.live
    await wait_until(lambda: len(live.viewers) == 1)
    (viewer,) = live.viewers
    # Meanwhile another player plays on, unaffected.
    url = f"{page_url(demo)}/live/{serial}.mp4"
    watching = asyncio.create_task(asyncio.to_thread(play, url, 40))
    await wait_until(lambda: viewer.skipped > 0)
    # What waits for it stays within its backlog and one fragment (a 1 s GOP of 720p).
    assert viewer.conn.backlog() < live_http.LIVE_BACKLOG + 1024 * 1024
    await wait_until(lambda: viewer not in live.viewers)  # cut off after STALLED seconds
    frames, _ = await watching
    assert len(frames) >= 40
    stalled.close()
    await wait_until(lambda: released(demo, serial))


async def test_a_server_stopping_ends_its_live_answers(demo):
    serial = camera(demo)
    sock = raw_get(demo.server.port, f"/live/{serial}.mp4")
    sock.settimeout(PATIENCE)
    received = b""
    while b"moof" not in received:
        received += await asyncio.to_thread(sock.recv, 65536)
    await demo.server.stop()
    while chunk := await asyncio.to_thread(sock.recv, 65536):  # the rest, then the end
        assert len(chunk) > 0
    sock.close()
    await wait_until(lambda: released(demo, serial))


class _Collector:
    """A viewer's connection that takes everything at once."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def backlog(self) -> int:
        return 0


class _Hub:
    def leave(self, serial: str, subscriber: object) -> bool:
        return True


class _Driver:
    streams = _Hub()

    async def watch(self, device: object, subscriber: object) -> None:
        return None


async def test_video_long_after_a_key_frame_waits_for_the_next_one(monkeypatch):
    """The muxer holds a fragment whole until the next key frame: a camera that sends none
    for longer than MAX_GOP loses the rest up to the next one, never memory."""
    monkeypatch.setattr(live_http, "AUDIO_WAIT", 0.0)  # a camera without sound
    units = h264_access_units(40)  # 20 fps, a key frame every 10
    key, deltas = units[0][0], [unit for unit, keyframe in units[1:10]]
    info = VideoInfo("H264", 20, 320, 240)
    stream = live_http.LiveMp4(_Driver(), SimpleNamespace(serial="CAM"),  # type: ignore[arg-type]
                               lambda stream: None)
    viewer = live_http.Viewer(_Collector())  # type: ignore[arg-type]
    stream.add(viewer)
    await stream.joined
    seconds = live_http.MAX_GOP + 5
    frames = [VideoFrame(key, True, info, pts=0.0)]
    frames += [VideoFrame(deltas[index % 9], False, info, pts=index / 20)
               for index in range(1, int(seconds * 20))]
    frames += [VideoFrame(key, True, info, pts=seconds), VideoFrame(key, True, info,
                                                                    pts=seconds + 0.05)]
    for frame in frames:  # no faster than the muxer takes them (see MAX_QUEUED)
        stream.media(frame)
        await wait_until(lambda: stream._queued < 4, 30)
    await wait_until(lambda: stream._queued == 0, 30)
    answer = bytes(viewer.conn.data)  # type: ignore[attr-defined]
    with av.open(io.BytesIO(answer[answer.index(b"\r\n\r\n") + 4:])) as container:
        times = [float(p.pts * p.time_base) for p in container.demux(video=0) if p.pts is not None]
    assert times[0] == 0 and seconds in times  # from key frame to key frame, and on
    held_back = [t for t in times if live_http.MAX_GOP + 0.01 < t < seconds]
    assert not held_back and len(times) > live_http.MAX_GOP * 20
    stream.remove(viewer)
