"""The simulated DoorBird streams as a station does: PyAV plays its RTSP with a session id or
Basic credentials and decodes moving H.264 pictures and the µ-law tone; the station's refusals
(credentials, permission window, stream slots shared with HTTP) come with their statuses; and
what a client sends to its speaker is kept to be measured."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import av.error
import numpy as np
import pytest

from bridge.media.audio import MulawDecoder, MulawEncoder
from bridge.media.rtsp import H264Track, Refused
from bridge.media.rtsp.protocol import ServerConnection
from bridge.simulators import cli
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from bridge.simulators.doorbird.rtsp import stream_paths
from tests.test_media_audio import pitch, samples_of, tone

LIMIT = 30.0  # seconds: the machine is shared and noisy; a generous bound for anything
DEFAULT, HD = "/mpeg/media.amp", "/mpeg/720p/media.amp"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def station() -> AsyncIterator[DoorBirdSimulator]:
    sim = DoorBirdSimulator(DoorBirdConfig(event_ports=[free_udp_port()], rtsp_port=0,
                                           rtsp_http_port=None, stream_slots=2))
    await sim.start()
    yield sim
    await sim.stop()


async def session_id(sim: DoorBirdSimulator) -> str:
    async with aiohttp.ClientSession(headers=basic(sim.config.user, sim.config.password)) as http, \
            http.get(f"{sim.url}/bha-api/getsession.cgi") as response:
        return (await response.json())["BHA"]["SESSIONID"]


async def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {LIMIT} s for {what}"
        await asyncio.sleep(0.05)


def play(url: str, frames: int = 30, transport: str = "tcp") -> dict[str, Any]:
    """What a player gets: decoded pictures (as grey arrays) and µ-law audio (as PCM frames)."""
    pictures: list[np.ndarray] = []
    sounds: list[av.AudioFrame] = []
    with av.open(url, options={"rtsp_transport": transport}, timeout=(LIMIT, LIMIT)) as player:
        video, audio = player.streams.video[0], player.streams.audio[0]
        found = {"video": video.codec_context.name, "audio": audio.codec_context.name,
                 "rate": audio.codec_context.sample_rate}
        for packet in player.demux(video, audio):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    pictures.append(frame.to_ndarray(format="gray"))
                else:
                    sounds.append(frame)
            if len(pictures) >= frames:
                break
    return {**found, "pictures": pictures, "sounds": sounds}


def all_differ(pictures: list[np.ndarray]) -> bool:
    return all((a != b).any() for a, b in itertools.pairwise(pictures))


class RtspClient:
    """A bare RTSP client, for the exact statuses a station answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 base: str) -> None:
        self.reader, self.writer, self.base = reader, writer, base
        self.cseq = 0
        self.session: str | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, sim: DoorBirdSimulator, path: str = DEFAULT,
                      query: str = "") -> AsyncIterator[RtspClient]:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.rtsp_port)
        url = f"rtsp://127.0.0.1:{sim.rtsp_port}{path}" + (f"?{query}" if query else "")
        try:
            yield cls(reader, writer, url)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def request(self, method: str, suffix: str = "", **headers: str) -> int:
        self.cseq += 1
        lines = [f"{method} {self.base}{suffix} RTSP/1.0", f"CSeq: {self.cseq}"]
        if self.session:
            lines.append(f"Session: {self.session}")
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(LIMIT):
            while True:
                if (await self.reader.readexactly(1)) == b"$":  # media: skip it
                    head = await self.reader.readexactly(3)
                    await self.reader.readexactly(int.from_bytes(head[1:], "big"))
                    continue
                head = (b"R" + await self.reader.readuntil(b"\r\n\r\n")).decode()
                answer = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if line)
                await self.reader.readexactly(int(answer.get("Content-Length", "0")))
                if answer.get("CSeq") == str(self.cseq):
                    break
        if "Session" in answer:
            self.session = answer["Session"].split(";")[0]
        return int(head.split(" ")[1])

    async def watch(self) -> int:
        """DESCRIBE, SETUP of the video over TCP, PLAY: the status of the first refusal, or of
        the PLAY."""
        for method, suffix, headers in (
                ("DESCRIBE", "", {"Accept": "application/sdp"}),
                ("SETUP", "/trackID=0", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}),
                ("PLAY", "", {})):
            status = await self.request(method, suffix, **headers)
            if status != 200:
                return status
        return 200


async def test_pyav_plays_720p_with_a_session_id_moving_pictures_and_the_tone(station):
    sid = await session_id(station)
    got = await asyncio.to_thread(play, f"{station.rtsp_url(HD)}?sessionid={sid}", 36)
    assert (got["video"], got["audio"], got["rate"]) == ("h264", "pcm_mulaw", 8000)
    assert len(got["pictures"]) >= 30
    assert {p.shape for p in got["pictures"]} == {(720, 1280)}
    assert all_differ(got["pictures"])  # the clock runs: no two frames alike
    assert 400 < pitch(samples_of(got["sounds"]), 8000) < 480  # the station's 440 Hz tone


async def test_pyav_plays_the_default_path_with_basic_credentials_over_udp(station):
    c = station.config
    url = station.rtsp_url().replace("rtsp://", f"rtsp://{c.user}:{c.password}@")
    got = await asyncio.to_thread(play, url, 30, "udp")
    assert {p.shape for p in got["pictures"]} == {(480, 640)}  # the default path is VGA
    assert all_differ(got["pictures"])
    assert sum(f.samples for f in got["sounds"]) > 0


async def test_without_good_credentials_rtsp_is_refused(station):
    with pytest.raises(av.error.HTTPUnauthorizedError):
        await asyncio.to_thread(play, station.rtsp_url())
    with pytest.raises(av.error.HTTPUnauthorizedError):
        await asyncio.to_thread(play, f"{station.rtsp_url()}?sessionid=made-up")
    async with RtspClient.connect(station) as rtsp:
        assert await rtsp.request("OPTIONS") == 200  # asked before any credentials
        assert await rtsp.request("DESCRIBE", **basic(station.config.user, "wrong")) == 401
    assert not station.rtsp.server.streaming(DEFAULT)


async def test_outside_the_live_view_window_rtsp_answers_403(station):
    station.config.watch_always = False
    sid = await session_id(station)
    async with RtspClient.connect(station, query=f"sessionid={sid}") as rtsp:
        assert await rtsp.request("DESCRIBE") == 403
    with pytest.raises(av.error.HTTPForbiddenError):
        await asyncio.to_thread(play, f"{station.rtsp_url()}?sessionid={sid}")
    await station.device.ring(1)  # a ring opens the window for 5 minutes
    async with RtspClient.connect(station, query=f"sessionid={sid}") as rtsp:
        assert await rtsp.watch() == 200


async def test_stream_slots_are_shared_by_rtsp_mjpeg_and_audio(station):
    """Two slots: video.cgi and audio-receive.cgi take them, RTSP is refused 453 and more HTTP
    509; each stream that ends gives its slot to the next, whichever kind."""
    sid = await session_id(station)
    bha = f"{station.url}/bha-api"
    async with aiohttp.ClientSession(headers=basic(station.config.user,
                                                   station.config.password)) as http:
        mjpeg = await http.get(f"{bha}/video.cgi")
        sound = await http.get(f"{bha}/audio-receive.cgi")
        assert (mjpeg.status, sound.status) == (200, 200)
        async with RtspClient.connect(station, query=f"sessionid={sid}") as rtsp:
            assert await rtsp.watch() == 453
            async with http.get(f"{bha}/video.cgi") as third:
                assert third.status == 509
            async with http.get(f"{bha}/audio-receive.cgi") as third:
                assert third.status == 509

            mjpeg.close()  # a slot comes free: the same RTSP session may now play
            await until(lambda: station.device.slots.used == 1, "video.cgi's slot")
            assert await rtsp.request("PLAY") == 200
            async with http.get(f"{bha}/video.cgi") as third:
                assert third.status == 509  # RTSP holds the slot now
            assert await rtsp.request("TEARDOWN") == 200
        await until(lambda: station.device.slots.used == 1, "the RTSP player's slot")
        async with http.get(f"{bha}/video.cgi") as again:
            assert again.status == 200
        sound.close()
    await until(lambda: station.device.slots.used == 0, "every slot")


async def test_the_picture_is_encoded_only_while_someone_plays_and_once_for_all(station):
    sid = await session_id(station)
    camera = station.rtsp.cameras[DEFAULT]
    await asyncio.sleep(0.5)
    assert camera.encoded == 0  # nobody watching, nothing encoded
    url = f"{station.rtsp_url()}?sessionid={sid}"
    both = await asyncio.gather(asyncio.to_thread(play, url, 36),
                                asyncio.to_thread(play, url, 36))
    assert all(len(got["pictures"]) >= 30 for got in both)
    await until(lambda: not station.rtsp.server.streaming(DEFAULT), "the last player to leave")
    encoded = camera.encoded
    # two players for about three seconds at 12 fps: one encoder's worth, not two
    assert encoded < 36 * 2 + 24
    await asyncio.sleep(0.5)
    assert camera.encoded == encoded  # stopped with the last player


async def test_audio_transmit_keeps_what_it_hears_a_1khz_tone_measures_1khz(station):
    mulaw = MulawEncoder().encode(tone(1000, 2.0, 8000))
    chunks = [mulaw[i:i + 800] for i in range(0, len(mulaw), 800)]

    async def talk() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
            await asyncio.sleep(0.01)

    url = f"{station.url}/bha-api/audio-transmit.cgi"
    async with aiohttp.ClientSession(headers=basic(station.config.user,
                                                   station.config.password)) as http:
        talking = asyncio.create_task(http.post(url, data=talk(),
                                                headers={"Content-Type": "audio/basic"}))
        await until(lambda: station.device.transmitting, "the first talker")
        async with http.post(url, data=b"\xff" * 160) as second:
            assert second.status == 503  # one transmitter at a time
        async with await talking as response:
            assert response.status == 200
        async with http.get(f"{station.url}/_sim/audio") as response:
            heard = await response.read()
    assert heard == station.device.recorded_audio() == mulaw
    measured = pitch(samples_of(MulawDecoder().decode(heard)), 8000)
    assert abs(measured - 1000) < 20


async def test_audio_transmit_keeps_only_the_last_minute(station):
    minute = 60 * 8000
    station.device.record_audio(b"\x01" * minute)
    station.device.record_audio(b"\x02" * 8000)
    recorded = station.device.recorded_audio()
    assert len(recorded) == minute and recorded[-8000:] == b"\x02" * 8000
    assert station.device.audio_received == minute + 8000


async def test_offline_the_rtsp_port_dies_and_comes_back_on_the_same_port(station):
    sid = await session_id(station)
    port = station.rtsp_port
    async with RtspClient.connect(station, query=f"sessionid={sid}") as rtsp:
        assert await rtsp.watch() == 200
        station.device.go_offline()
        async with asyncio.timeout(LIMIT):
            while await rtsp.reader.read(65536):
                pass  # the connection ends
    await until(lambda: station.rtsp.server is None, "the RTSP server to go down")
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    assert station.device.slots.used == 0
    station.device.offline = False
    await until(lambda: station.rtsp.server is not None, "the RTSP server to come back")
    assert station.rtsp_port == port
    async with RtspClient.connect(station, query=f"sessionid={sid}") as rtsp:
        assert await rtsp.watch() == 200


async def test_models_have_the_paths_the_seed_lists():
    assert stream_paths("DoorBird D2101V", "000130") == {DEFAULT: (640, 480), HD: (1280, 720)}
    assert stream_paths("DoorBird D2101V", "000128") == {DEFAULT: (640, 480)}
    assert stream_paths("DoorBird D1101V", "000130") == {
        DEFAULT: (640, 480), "/mpeg/1080p/media.amp": (1920, 1080)}
    assert stream_paths("DoorBird D101", "000140") == {DEFAULT: (640, 480)}
    sim = DoorBirdSimulator(DoorBirdConfig(event_ports=[free_udp_port()], rtsp_port=0,
                                           rtsp_http_port=None, firmware="000120"))
    await sim.start()
    try:
        async with RtspClient.connect(sim, HD) as rtsp:
            assert await rtsp.request("DESCRIBE", **basic(sim.config.user,
                                                          sim.config.password)) == 404
    finally:
        await sim.stop()


async def test_describe_gives_the_parameter_sets_before_anyone_plays(station):
    (video, _) = station.rtsp.cameras[HD].tracks
    assert isinstance(video, H264Track) and video.sps and video.pps
    assert video.sps[0] & 0x1F == 7 and video.pps[0] & 0x1F == 8


async def test_a_taken_rtsp_port_gives_way_to_a_free_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        wanted = taken.getsockname()[1]
        sim = DoorBirdSimulator(DoorBirdConfig(event_ports=[free_udp_port()],
                                               rtsp_port=wanted, rtsp_http_port=None))
        await sim.start()
        try:
            assert sim.rtsp_port not in (None, wanted)
            assert any(f":{sim.rtsp_port}/mpeg/media.amp" in line for line in sim.describe())
        finally:
            await sim.stop()
    assert sim.rtsp_port is None


def test_a_refusal_in_an_access_check_is_answered_with_its_own_status():
    def forbid(request: Any) -> bool:
        raise Refused(403)

    connection = ServerConnection(describe=lambda path: (), authorize=forbid)
    connection.receive_data(b"DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\n\r\n", 0.0)
    assert connection.data_to_send().startswith(b"RTSP/1.0 403 Forbidden\r\nCSeq: 2\r\n")
    connection.receive_data(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\n\r\n", 0.0)
    assert connection.data_to_send().startswith(b"RTSP/1.0 200 OK")  # still usable


def test_the_command_line_sets_the_rtsp_port_and_call_buttons():
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    base = ["simulate", "doorbird", "--http-port", "0"]
    config = cli.doorbird_config(parser.parse_args([*base, "--rtsp-port", "0",
                                                    "--buttons", "3"]))
    assert (config.rtsp_port, config.buttons) == (0, 3)
    assert cli.doorbird_config(parser.parse_args([*base, "--rtsp-port", "none"])).rtsp_port \
        is None
    defaults = cli.doorbird_config(parser.parse_args(base))
    assert (defaults.rtsp_port, defaults.buttons) == (554, 1)
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--buttons", "0"])


async def test_demo_mode_streams_and_points_the_bridge_at_the_stations_rtsp(tmp_path):
    from bridge.demo import Demo
    from bridge.settings import load_settings

    demo = Demo(visitors=None)
    await demo.start()
    try:
        station = demo.doorbird
        settings = demo.settings(load_settings(**{"server.data_dir": tmp_path}))
        assert settings.doorbird[0].rtsp_port == station.rtsp_port is not None
        sid = await session_id(station)
        got = await asyncio.to_thread(play, f"{station.rtsp_url(HD)}?sessionid={sid}", 12)
        assert {p.shape for p in got["pictures"]} == {(720, 1280)}
    finally:
        await demo.stop()
