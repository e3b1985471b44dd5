"""SkyBell clip downloads against the SkyBell cloud simulator over loopback: the clip behind an
activity arrives whole (pictures and sound decode to the served length), an address that
expired is asked for again, a missing activity is refused at once, and a path that is no clip
reference is refused before any request."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from bridge.backends.skybell.client import SkyBellClient
from bridge.backends.skybell.clips import download_clip, is_clip_path
from bridge.driver.errors import BridgeError, InvalidCommandValue
from bridge.media.hub import AudioFrame, MediaFrame, VideoFrame
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from bridge.simulators.skybell.clips import encode_clip
from tests.media import decode_h264
from tests.test_downloads import decode_adts
from tests.test_media_audio import pitch, samples_of
from tests.wsclient import until

SECONDS, FPS = 2.0, 10
SERVED = encode_clip(SECONDS, FPS, start=0.0)


class Sink:
    """Collects what a download feeds, as the download hub would take it."""

    def __init__(self) -> None:
        self.found = False
        self.frames: list[MediaFrame] = []

    def started(self) -> None:
        self.found = True

    async def send(self, frame: MediaFrame) -> None:
        assert self.found, "media before the clip was found"
        self.frames.append(frame)


@pytest.fixture
async def sim():
    simulator = SkyBellSimulator(CloudConfig(udp_port=0))
    await simulator.start()

    async def served() -> bytes:
        return SERVED

    simulator.cloud.video = served  # the clip encoder with sound, at a known length
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim):
    cloud_client = SkyBellClient(sim.url, api_key=sim.cloud.api_key, backoff=0.01, timeout=5)
    yield cloud_client
    await cloud_client.close()


async def clip_of_a_ring(sim: SkyBellSimulator) -> dict[str, Any]:
    """A doorbell press whose clip has been uploaded."""
    device = next(iter(sim.cloud.devices.values()))
    activity = sim.cloud.event(device, "doorbell")
    await until(lambda: activity["video_ready"])
    return activity


async def test_a_clip_downloads_whole_and_decodes_to_the_served_length(sim, client):
    activity = await clip_of_a_ring(sim)
    sink = Sink()
    await download_clip(client, activity["video_url"], sink)
    video = [f for f in sink.frames if isinstance(f, VideoFrame)]
    audio = [f for f in sink.frames if isinstance(f, AudioFrame)]
    assert video[0].keyframe and video[0].data.startswith(b"\0\0\0\1\x67")  # SPS first
    assert {(f.info.width, f.info.height, f.info.fps) for f in video} == {(320, 240, FPS)}
    pictures = decode_h264([f.data for f in video])
    assert len(pictures) / FPS == SECONDS
    sound = decode_adts([f.data for f in audio])
    # as long as the clip, plus the encoder's priming and the last frame's padding
    assert SECONDS <= sum(f.samples for f in sound) / 16000 <= SECONDS + 2 * 1024 / 16000
    assert pitch(samples_of(sound), 16000) == pytest.approx(440, abs=20)


async def test_an_expired_address_is_asked_for_once_more(sim, client):
    activity = await clip_of_a_ring(sim)
    handed_out = 0
    fresh = sim.cloud.video_url

    def expired_at_first(activity_id: str) -> str:
        nonlocal handed_out
        handed_out += 1
        url = fresh(activity_id)
        if handed_out == 1:  # the first one has expired by the time it is fetched
            token = url.rsplit("Signature=", 1)[1]
            sim.cloud.videos[token] = (activity_id, time.time() - 1)
        return url

    sim.cloud.video_url = expired_at_first
    sink = Sink()
    await download_clip(client, activity["video_url"], sink)
    assert handed_out == 2
    assert len(decode_h264([f.data for f in sink.frames if isinstance(f, VideoFrame)])) == \
        SECONDS * FPS


async def test_an_address_that_keeps_expiring_is_an_error_that_shows_no_signature(
        sim, client):
    activity = await clip_of_a_ring(sim)
    fresh = sim.cloud.video_url
    handed: list[str] = []

    def always_expired(activity_id: str) -> str:
        url = fresh(activity_id)
        handed.append(url)
        sim.cloud.videos[url.rsplit("Signature=", 1)[1]] = (activity_id, time.time() - 1)
        return url

    sim.cloud.video_url = always_expired
    sink = Sink()
    with pytest.raises(BridgeError) as refused:
        await download_clip(client, activity["video_url"], sink)
    assert len(handed) == 2 and not sink.frames
    assert refused.value.code == "unknown_error"
    assert "Signature" not in str(refused.value) and "_media" not in str(refused.value)


async def test_a_missing_or_deleted_activity_is_refused_at_once(sim, client):
    activity = await clip_of_a_ring(sim)
    await client.delete_activity(activity["activity_id"])
    for path in (activity["video_url"], f"/activity/{uuid.uuid4()}/video"):
        sink = Sink()
        started = asyncio.get_running_loop().time()
        with pytest.raises(InvalidCommandValue):
            await download_clip(client, path, sink)
        assert asyncio.get_running_loop().time() - started < 1.0
        assert not sink.found and not sink.frames


async def test_a_path_that_is_no_clip_reference_is_refused_without_a_request(sim, client):
    before = client.requests
    for path in ("", "activity/1/video", "https://example.com/activity/1/video",
                 "//example.com/clip.mp4", "/activity/../devices/", "/activity/1/video?x=1",
                 "/activity/1/video#x", "/activity/ 1/video"):
        assert not is_clip_path(path)
        with pytest.raises(InvalidCommandValue):
            await download_clip(client, path, Sink())
    assert client.requests == before
    assert is_clip_path("/activity/6f1c2b8e-1d2a-4d6b-9c1e-0a1b2c3d4e5f/video")
