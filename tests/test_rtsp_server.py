"""The RTSP server, played by a real player (PyAV's RTSP demuxer and decoders) over real
sockets, TCP-interleaved and UDP, plus the protocol's answers to what players get wrong."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from typing import Any

import av
import av.logging
import numpy as np
import pytest

from bridge.media.rtsp import (
    AacTrack,
    H264Track,
    MediaItem,
    PcmuTrack,
    RtspServer,
    Sink,
    Unsubscribe,
    auth,
)
from bridge.media.rtsp.protocol import Paused, PlayRequested, ServerConnection, SessionEnded
from bridge.media.rtsp.rtp import AacPacketiser, H264Packetiser, split_annexb

WIDTH, HEIGHT, FPS, GOP = 320, 240, 10, 10
AUDIO_RATE, AUDIO_FRAME = 8000, 160  # 20 ms of µ-law
AAC_RATE = 16000
PATH = "/mpeg/media.amp"
LIMIT = 60.0  # seconds: the machine is shared, a generous bound for anything to happen


@cache
def h264_access_units(count: int = 30) -> tuple[tuple[bytes, bool], ...]:
    """A picture that changes every frame, a key frame every ``GOP``; parameter sets only in
    front of the first one, so that the server must add them in front of the others."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS, 1)
    codec.options = {"preset": "ultrafast", "tune": "zerolatency",
                     "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0"}
    units: list[tuple[bytes, bool]] = []
    for index in range(count):
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        image[:, :, 0] = (index * 8) % 256
        image[:, (index * 10) % WIDTH:, 1] = 200  # a bar that moves
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        units.extend((bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame))
    units.extend((bytes(p), bool(p.is_keyframe)) for p in codec.encode(None))
    return tuple(units)


@cache
def mulaw_frames(seconds: float = 1.0) -> tuple[bytes, ...]:
    """A 440 Hz tone in 20 ms µ-law frames."""
    codec = av.CodecContext.create("pcm_mulaw", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_RATE, "mono", "s16"
    frames = []
    for index in range(int(seconds * AUDIO_RATE / AUDIO_FRAME)):
        t = (np.arange(AUDIO_FRAME) + index * AUDIO_FRAME) / AUDIO_RATE
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_FRAME
        frames.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return tuple(frames)


@cache
def aac_frames(seconds: float = 1.0) -> tuple[bytes, ...]:
    """A 440 Hz tone in AAC-LC frames (1024 samples at 16 kHz), bare, as PyAV encodes them."""
    codec = av.CodecContext.create("aac", "w")
    codec.sample_rate, codec.layout, codec.format = AAC_RATE, "mono", "fltp"
    codec.bit_rate = 32000
    frames: list[bytes] = []
    for index in range(int(seconds * AAC_RATE / 1024)):
        t = (np.arange(1024) + index * 1024) / AAC_RATE
        samples = (np.sin(2 * np.pi * 440 * t) * 0.3).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = AAC_RATE
        frame.pts = index * 1024
        frames.extend(bytes(p) for p in codec.encode(frame))
    return tuple(frames)


class LoopSource:
    """A camera: the generated clip over and over, video and audio (µ-law or AAC) on one
    clock, a little faster than real time so that tests finish sooner."""

    def __init__(self, audio: str = "pcmu", speed: float = 2.0) -> None:
        units = h264_access_units()
        nals = split_annexb(units[0][0])
        sps = next(n for n in nals if n[0] & 0x1F == 7)
        pps = next(n for n in nals if n[0] & 0x1F == 8)
        if audio == "aac":
            audio_track: PcmuTrack | AacTrack = AacTrack(AAC_RATE, 1)
            self.audio, self.audio_duration = aac_frames(), 1024 / AAC_RATE
        else:
            audio_track = PcmuTrack()
            self.audio, self.audio_duration = mulaw_frames(), AUDIO_FRAME / AUDIO_RATE
        self.tracks = (H264Track(sps=sps, pps=pps), audio_track)
        self.speed = speed
        self.subscriptions = 0
        self.active = 0
        self.stopped = asyncio.Event()

    async def subscribe(self, sink: Sink) -> Unsubscribe:
        self.subscriptions += 1
        self.active += 1
        self.stopped.clear()
        task = asyncio.create_task(self._feed(sink))

        def unsubscribe() -> None:
            self.active -= 1
            task.cancel()
            self.stopped.set()

        return unsubscribe

    async def _feed(self, sink: Sink) -> None:
        number = sent = 0
        while True:
            for data, keyframe in h264_access_units():
                pts = number / FPS
                sink(MediaItem(0, data, pts, keyframe))
                while sent * self.audio_duration < pts + 1 / FPS:
                    sink(MediaItem(1, self.audio[sent % len(self.audio)],
                                   sent * self.audio_duration))
                    sent += 1
                number += 1
                await asyncio.sleep(1 / FPS / self.speed)


@dataclass
class Played:
    sizes: set[tuple[int, int]] = field(default_factory=set)
    video_frames: int = 0
    audio_samples: int = 0
    audio_rate: int = 0
    distinct_pictures: int = 0
    errors: list[str] = field(default_factory=list)


def play(url: str, transport: str, frames: int = 30) -> Played:
    """Open ``url`` as a player would and decode ``frames`` video frames and the audio that
    comes with them; collects the decoders' error messages.  Blocking: run it in a thread."""
    played = Played()
    means: set[float] = set()
    with (av.logging.Capture() as logs,
          av.open(url, options={"rtsp_transport": transport}, timeout=LIMIT) as container):
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        for packet in container.demux(streams):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    played.video_frames += 1
                    played.sizes.add((frame.width, frame.height))
                    means.add(round(float(frame.to_ndarray(format="gray").mean()), 1))
                else:
                    played.audio_samples += frame.samples
                    played.audio_rate = frame.sample_rate
            if played.video_frames >= frames:
                break
    played.errors = [f"{name}: {message}" for level, name, message in logs
                     if level <= av.logging.ERROR and name in ("h264", "pcm_mulaw", "aac")]
    played.distinct_pictures = len(means)
    return played


@pytest.fixture
def av_errors_logged() -> Any:
    """PyAV reports FFmpeg's messages only when a level is set."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    yield
    av.logging.set_level(previous)


@pytest.fixture
async def camera() -> LoopSource:
    return LoopSource()


@pytest.fixture
async def server_factory() -> AsyncIterator[Callable[..., Any]]:
    servers: list[RtspServer] = []

    async def start(sources: dict[str, Any], **options: Any) -> RtspServer:
        server = RtspServer(sources.get, **options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def eventually(condition: Callable[[], bool], timeout: float = LIMIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def assert_watched(played: Played, audio_rate: int = AUDIO_RATE) -> None:
    assert played.video_frames >= 30
    assert played.sizes == {(WIDTH, HEIGHT)}
    assert played.errors == []
    assert played.distinct_pictures > 5, "the picture changes from frame to frame"
    assert played.audio_rate == audio_rate
    assert played.audio_samples >= audio_rate  # a second of audio came with 3 s of video


# -- a real player ---------------------------------------------------------------------------

@pytest.mark.usefixtures("av_errors_logged")
async def test_a_player_over_tcp_decodes_video_and_audio_with_a_session_id_in_the_url(
        server_factory: Any, camera: LoopSource) -> None:
    server = await server_factory(
        {PATH: camera}, authorize=auth.query_token("sessionid", lambda t: t == "s3cr3t"))
    played = await asyncio.to_thread(play, server.url(PATH + "?sessionid=s3cr3t"), "tcp")
    assert_watched(played)


@pytest.mark.usefixtures("av_errors_logged")
async def test_a_player_over_udp_decodes_video_and_audio_with_basic_credentials(
        server_factory: Any, camera: LoopSource) -> None:
    server = await server_factory({PATH: camera}, authorize=auth.basic("user", "pa:ss"))
    url = f"rtsp://user:pa%3Ass@127.0.0.1:{server.port}{PATH}"
    played = await asyncio.to_thread(play, url, "udp")
    assert_watched(played)


@pytest.mark.usefixtures("av_errors_logged")
async def test_two_players_share_one_source_which_stops_when_the_last_one_leaves(
        server_factory: Any, camera: LoopSource) -> None:
    server = await server_factory({PATH: camera})
    first, second = await asyncio.gather(
        asyncio.to_thread(play, server.url(PATH), "tcp"),
        asyncio.to_thread(play, server.url(PATH), "udp"))
    assert_watched(first)
    assert_watched(second)
    assert camera.subscriptions == 1, "both players were fed by one subscription"
    await asyncio.wait_for(camera.stopped.wait(), LIMIT)  # both sent TEARDOWN on closing
    assert camera.active == 0
    assert not server.streaming(PATH)


@pytest.mark.usefixtures("av_errors_logged")
async def test_aac_audio_plays_beside_the_video(server_factory: Any) -> None:
    server = await server_factory({PATH: LoopSource(audio="aac")})
    played = await asyncio.to_thread(play, server.url(PATH), "tcp")
    assert_watched(played, audio_rate=AAC_RATE)


async def test_a_player_with_wrong_credentials_is_refused(
        server_factory: Any, camera: LoopSource) -> None:
    server = await server_factory({PATH: camera}, authorize=auth.basic("user", "right"))
    url = f"rtsp://user:wrong@127.0.0.1:{server.port}{PATH}"
    with pytest.raises(av.error.HTTPUnauthorizedError):
        await asyncio.to_thread(play, url, "tcp")
    assert camera.subscriptions == 0


async def test_a_player_asking_for_an_unknown_path_is_told_it_is_not_found(
        server_factory: Any, camera: LoopSource) -> None:
    server = await server_factory({PATH: camera})
    with pytest.raises(av.error.HTTPNotFoundError):
        await asyncio.to_thread(play, server.url("/mpeg/1080p/media.amp"), "tcp")


# -- what the server answers, seen byte by byte ----------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    """A hand-written RTSP client over a real socket, to say what a player library would not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 base: str) -> None:
        self.reader, self.writer, self.base = reader, writer, base
        self.cseq = 0
        self.media: list[tuple[int, bytes]] = []  # interleaved packets read meanwhile

    @classmethod
    async def connect(cls, server: RtspServer, receive_buffer: int | None = None) -> RawClient:
        sock = socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        reader, writer = await asyncio.open_connection(
            sock=sock, limit=1 << 20 if receive_buffer is None else receive_buffer)
        return cls(reader, writer, server.url(""))

    async def send(self, method: str, path: str, **headers: str) -> Answer:
        self.cseq += 1
        lines = [f"{method} {self.base}{path} RTSP/1.0", f"CSeq: {self.cseq}"]
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await self.answer()

    async def answer(self) -> Answer:
        async with asyncio.timeout(LIMIT):
            while (await self.reader.readexactly(1)) == b"$":
                channel, length = struct.unpack("!BH", await self.reader.readexactly(3))
                self.media.append((channel, await self.reader.readexactly(length)))
            head = b"R" + await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(int(lines[0].split(" ")[1]), headers, body)

    async def packet(self) -> tuple[int, bytes]:
        async with asyncio.timeout(LIMIT):
            assert await self.reader.readexactly(1) == b"$"
            channel, length = struct.unpack("!BH", await self.reader.readexactly(3))
            return channel, await self.reader.readexactly(length)

    async def play_tcp(self, path: str = PATH) -> str:
        """SETUP every track interleaved and PLAY; returns the session id."""
        answer = await self.send("SETUP", path + "/trackID=0",
                                 Transport="RTP/AVP/TCP;unicast;interleaved=0-1")
        assert answer.status == 200, answer
        session = answer.headers["session"].split(";")[0]
        answer = await self.send("PLAY", path, Session=session)
        assert answer.status == 200, answer
        return session

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def clients() -> AsyncIterator[list[RawClient]]:
    opened: list[RawClient] = []
    yield opened
    for client in opened:
        await client.close()


async def test_credentials_are_asked_for_with_basic_and_options_needs_none(
        server_factory: Any, camera: LoopSource, clients: list[RawClient]) -> None:
    server = await server_factory({PATH: camera}, authorize=auth.basic("user", "right"))
    client = await RawClient.connect(server)
    clients.append(client)
    assert (await client.send("OPTIONS", PATH)).status == 200
    refused = await client.send("DESCRIBE", PATH)
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith("Basic realm=")
    wrong = base64.b64encode(b"user:wrong").decode()
    assert (await client.send("DESCRIBE", PATH, Authorization=f"Basic {wrong}")).status == 401
    right = base64.b64encode(b"user:right").decode()
    assert (await client.send("DESCRIBE", PATH, Authorization=f"Basic {right}")).status == 200


async def test_the_description_carries_parameter_sets_profile_and_control_urls_with_the_query(
        server_factory: Any, camera: LoopSource, clients: list[RawClient]) -> None:
    server = await server_factory({PATH: camera})
    client = await RawClient.connect(server)
    clients.append(client)
    answer = await client.send("DESCRIBE", PATH + "?sessionid=abc")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/sdp"
    sdp = answer.body.decode()
    sps, pps = camera.tracks[0].sps, camera.tracks[0].pps
    assert sps is not None and pps is not None
    sets = f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()}"
    assert f"sprop-parameter-sets={sets}" in sdp
    assert "packetization-mode=1" in sdp
    assert f"profile-level-id={sps[1:4].hex()}" in sdp
    assert "a=rtpmap:96 H264/90000" in sdp and "a=rtpmap:0 PCMU/8000" in sdp
    assert f"a=control:{server.url(PATH)}/trackID=1?sessionid=abc" in sdp


async def test_errors_name_what_is_wrong(
        server_factory: Any, camera: LoopSource, clients: list[RawClient]) -> None:
    server = await server_factory({PATH: camera, "/other": LoopSource()})
    client = await RawClient.connect(server)
    clients.append(client)
    assert (await client.send("DESCRIBE", "/nothing")).status == 404
    assert (await client.send("SETUP", PATH + "/trackID=7",
                              Transport="RTP/AVP/TCP;interleaved=0-1")).status == 404
    assert (await client.send("PLAY", PATH, Session="no-such-session")).status == 454
    assert (await client.send("SETUP", PATH + "/trackID=0",
                              Transport="RTP/AVP;multicast")).status == 461
    assert (await client.send("SETUP", PATH + "/trackID=0",
                              Transport="RTP/AVP;unicast")).status == 461  # no client_port
    session = await client.play_tcp()
    assert (await client.send("SETUP", "/other/trackID=0", Session=session,
                              Transport="RTP/AVP/TCP;interleaved=2-3")).status == 459
    assert (await client.send("SETUP", PATH + "/trackID=1", Session=session,
                              Transport="RTP/AVP/TCP;interleaved=2-3")).status == 455
    assert (await client.send("RECORD", PATH, Session=session)).status == 405
    keep_alive = await client.send("GET_PARAMETER", PATH, Session=session)
    assert keep_alive.status == 200
    assert (await client.send("TEARDOWN", PATH, Session=session)).status == 200
    await asyncio.wait_for(camera.stopped.wait(), LIMIT)  # its last player left
    assert (await client.send("GET_PARAMETER", PATH, Session=session)).status == 454


class BrokenSource:
    tracks = (H264Track(),)

    async def subscribe(self, sink: Sink) -> Unsubscribe:
        raise ConnectionRefusedError("the camera refused")


async def test_a_source_that_cannot_start_answers_play_with_service_unavailable(
        server_factory: Any, clients: list[RawClient]) -> None:
    server = await server_factory({PATH: BrokenSource()})
    client = await RawClient.connect(server)
    clients.append(client)
    answer = await client.send("SETUP", PATH + "/trackID=0",
                               Transport="RTP/AVP/TCP;unicast;interleaved=0-1")
    session = answer.headers["session"].split(";")[0]
    assert (await client.send("PLAY", PATH, Session=session)).status == 503
    assert not server.streaming(PATH)


async def test_what_a_client_may_send_is_bounded(
        server_factory: Any, camera: LoopSource, clients: list[RawClient]) -> None:
    server = await server_factory({PATH: camera}, max_sessions=2)
    client = await RawClient.connect(server)
    clients.append(client)
    for channel in (0, 2):
        answer = await client.send("SETUP", PATH + "/trackID=0",
                                   Transport=f"RTP/AVP/TCP;interleaved={channel}-{channel + 1}")
        assert answer.status == 200
    assert (await client.send("SETUP", PATH + "/trackID=0",
                              Transport="RTP/AVP/TCP;interleaved=4-5")).status == 453
    flood = await RawClient.connect(server)
    clients.append(flood)
    flood.writer.write(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Padding: " + b"x" * 20000)
    answer = await flood.answer()
    assert answer.status == 400
    assert answer.headers["connection"] == "close"
    async with asyncio.timeout(LIMIT):
        assert await flood.reader.read() == b""  # the server closed the connection


async def test_an_idle_session_expires_and_its_source_stops(
        server_factory: Any, camera: LoopSource, clients: list[RawClient]) -> None:
    server = await server_factory({PATH: camera}, session_timeout=1.0)
    client = await RawClient.connect(server)
    clients.append(client)
    session = await client.play_tcp()
    assert camera.active == 1
    await asyncio.wait_for(camera.stopped.wait(), LIMIT)
    assert not server.streaming(PATH)
    assert (await client.send("GET_PARAMETER", PATH, Session=session)).status == 454


class FloodSource:
    """Large access units fast, a key frame (SPS, PPS, IDR) every ``GOP``: more than a
    player that does not read can take."""

    tracks = (H264Track(),)

    def __init__(self) -> None:
        self.unit = 60_000

    async def subscribe(self, sink: Sink) -> Unsubscribe:
        task = asyncio.create_task(self._feed(sink))
        return task.cancel

    async def _feed(self, sink: Sink) -> None:
        number = 0
        while True:
            keyframe = number % GOP == 0
            nal = (b"\x65" if keyframe else b"\x41") + os.urandom(self.unit)
            head = b"\x00\x00\x00\x01\x67\x42\xc0\x1e\x00\x00\x00\x01\x68\xce"
            data = (head if keyframe else b"") + b"\x00\x00\x00\x01" + nal
            sink(MediaItem(0, data, number / 30, keyframe))
            number += 1
            await asyncio.sleep(0.01)


async def test_a_player_that_does_not_read_loses_frames_up_to_a_key_frame_never_memory(
        server_factory: Any, clients: list[RawClient]) -> None:
    limit = 256 * 1024
    server = await server_factory({PATH: FloodSource()}, write_buffer_limit=limit)
    stalled = await RawClient.connect(server, receive_buffer=4096)
    reading = await RawClient.connect(server)
    clients.extend((stalled, reading))
    stalled_session = await stalled.play_tcp()
    await reading.play_tcp()
    reader_task = asyncio.create_task(read_video(reading, seconds=3.0))

    def stalled_player() -> Any:
        return next(p for p in server.players(PATH) if p.session == stalled_session)

    most = 0
    deadline = time.monotonic() + LIMIT
    while stalled_player().skipped < 2 * GOP:
        assert time.monotonic() < deadline, "the stalled player never skipped"
        most = max(most, stalled_player().buffered)
        await asyncio.sleep(0.01)
    assert most <= limit + 2 * FloodSource().unit, "memory held for it stays bounded"
    received = await reader_task
    assert received.gaps == 0, "the reading player lost nothing"
    assert received.packets > 100

    stalled_received = await read_video(stalled, seconds=2.0)
    assert stalled_received.gaps > 0
    assert stalled_received.gaps == stalled_received.gaps_ending_at_key_frames


@dataclass
class Received:
    packets: int = 0
    gaps: int = 0
    gaps_ending_at_key_frames: int = 0


async def read_video(client: RawClient, seconds: float) -> Received:
    """Read RTP for a while; count sequence gaps and whether each resumes at a key frame."""
    received = Received()
    last: int | None = None
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _, packet = await client.packet()
        sequence = int.from_bytes(packet[2:4], "big")
        if last is not None and sequence != (last + 1) & 0xFFFF:
            received.gaps += 1
            received.gaps_ending_at_key_frames += packet[12] & 0x1F == 7
        last = sequence
        received.packets += 1
    return received


# -- the sans-I/O core and the packetisers, without sockets ------------------------------------

def test_large_nal_units_travel_as_fu_a_and_key_frames_get_their_parameter_sets() -> None:
    packetiser = H264Packetiser(H264Track(sps=b"\x67\x42\xc0\x1e", pps=b"\x68\xce"),
                                max_payload=1000)
    idr = b"\x65" + os.urandom(5000)
    packets = packetiser.packetise(b"\x00\x00\x00\x01" + idr, 1.0, True)
    payloads = [p[12:] for p in packets]
    assert payloads[0] == b"\x67\x42\xc0\x1e" and payloads[1] == b"\x68\xce"
    fragments = payloads[2:]
    assert all(len(p) <= 1000 for p in payloads)
    assert all(p[0] & 0x1F == 28 and p[1] & 0x1F == 5 for p in fragments)
    assert fragments[0][1] & 0x80 and fragments[-1][1] & 0x40
    assert bytes([fragments[0][0] & 0xE0 | 5]) + b"".join(p[2:] for p in fragments) == idr
    markers = [bool(p[1] & 0x80) for p in packets]
    assert markers == [False] * (len(packets) - 1) + [True]
    assert len({p[4:8] for p in packets}) == 1, "one timestamp for the access unit"
    sequences = [int.from_bytes(p[2:4], "big") for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequences))


def test_aac_frames_lose_their_adts_header_and_gain_an_au_header() -> None:
    frame = os.urandom(300)
    length = len(frame) + 7
    adts = bytes([0xFF, 0xF1, 0x60, 0x40 | (length >> 11), (length >> 3) & 0xFF,
                  ((length & 7) << 5) | 0x1F, 0xFC]) + frame
    (packet,) = AacPacketiser(AacTrack(16000, 1)).packetise(adts, 0.5, False)
    assert packet[12:14] == b"\x00\x10"  # 16 bits of AU headers
    assert int.from_bytes(packet[14:16], "big") >> 3 == len(frame)
    assert packet[16:] == frame
    assert AacTrack(16000, 1).config == b"\x14\x08"


def test_a_session_can_pause_and_track_urls_may_carry_the_track_after_the_query() -> None:
    tracks = (H264Track(), PcmuTrack())
    connection = ServerConnection(describe=lambda path: tracks if path == PATH else None,
                                  udp_ports=(6970, 6971))

    def send(text: str, now: float = 0.0) -> list[Any]:
        return connection.receive_data(text.replace("\n", "\r\n").encode(), now)

    base = f"rtsp://h{PATH}?sessionid=x"
    assert send(f"SETUP {base}/trackID=1 RTSP/1.0\nCSeq: 1\n"
                "Transport: RTP/AVP;unicast;client_port=5000-5001\n\n") == []
    answer = connection.data_to_send().decode()
    assert "RTSP/1.0 200 OK" in answer and "server_port=6970-6971" in answer
    (session,) = connection.sessions.values()
    assert session.path == PATH and session.transports[1].client_ports == (5000, 5001)
    (play,) = send(f"PLAY {base} RTSP/1.0\nCSeq: 2\nSession: {session.id}\n\n")
    assert isinstance(play, PlayRequested)
    connection.accept_play(play.request, session)
    assert connection.data_to_send().startswith(b"RTSP/1.0 200 OK")
    (paused,) = send(f"PAUSE {base} RTSP/1.0\nCSeq: 3\nSession: {session.id}\n\n")
    assert isinstance(paused, Paused)
    assert send(f"PAUSE {base} RTSP/1.0\nCSeq: 4\nSession: {session.id}\n\n") == []
    assert b"455" in connection.data_to_send()
    assert connection.expire(now=30.0) == []
    (ended,) = connection.expire(now=61.0)
    assert isinstance(ended, SessionEnded) and ended.reason == "timeout"
