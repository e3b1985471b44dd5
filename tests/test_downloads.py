"""The download hub: one recording per device at a time, owned by one connection, delivered
whole or cancelled cleanly."""

from __future__ import annotations

import asyncio
from random import Random

import pytest

from bridge.driver.errors import (
    DownloadAlreadyRunning,
    DownloadNotRunning,
    InvalidCommandValue,
    OnlyOneDownloadAtATime,
)
from bridge.media.clip import ClipError, clip_frames
from bridge.media.download import Download, DownloadHub
from bridge.media.hub import AudioFrame, MediaFrame, VideoFrame
from bridge.simulators.skybell.clips import encode_clip

OWNER, OTHER = object(), object()


def slow_recording(frames: int, gap: float = 0.01):
    async def run(download: Download) -> None:
        download.started()
        for index in range(frames):
            await download.audio(AudioFrame(bytes([index])))
            await asyncio.sleep(gap)
    return run


async def test_every_frame_arrives_in_order_then_finished():
    hub, received, finished = DownloadHub(), [], asyncio.Event()

    async def deliver(frame: MediaFrame) -> None:
        received.append(frame.data[0])

    await hub.start("CAM", OWNER, slow_recording(20, 0), deliver, finished.set)
    await asyncio.wait_for(finished.wait(), 5)
    assert received == list(range(20))
    assert not hub.downloading("CAM")


async def test_a_second_download_is_refused_by_whom_it_comes_from():
    hub = DownloadHub()

    async def deliver(frame: MediaFrame) -> None:
        return None

    await hub.start("CAM", OWNER, slow_recording(100), deliver, lambda: None)
    with pytest.raises(DownloadAlreadyRunning):
        await hub.start("CAM", OWNER, slow_recording(1), deliver, lambda: None)
    with pytest.raises(OnlyOneDownloadAtATime):
        await hub.start("CAM", OTHER, slow_recording(1), deliver, lambda: None)
    with pytest.raises(DownloadNotRunning):
        hub.cancel("CAM", OTHER)
    await hub.stop_all()


async def test_a_cancel_stops_the_frames_and_says_finished_once():
    hub, received, finished = DownloadHub(), [], []

    async def deliver(frame: MediaFrame) -> None:
        received.append(frame)

    await hub.start("CAM", OWNER, slow_recording(1000), deliver, lambda: finished.append(1))
    await asyncio.sleep(0.1)
    hub.cancel("CAM", OWNER)
    count = len(received)
    await asyncio.sleep(0.1)
    assert 0 < count == len(received) < 1000
    assert finished == [1] and not hub.downloading("CAM")
    with pytest.raises(DownloadNotRunning):
        hub.cancel("CAM", OWNER)
    await hub.stop_all()


async def test_a_recording_that_cannot_start_answers_its_error_and_frees_the_device():
    hub = DownloadHub()

    async def missing(download: Download) -> None:
        raise InvalidCommandValue("no such clip")

    async def deliver(frame: MediaFrame) -> None:
        return None

    with pytest.raises(InvalidCommandValue):
        await hub.start("CAM", OWNER, missing, deliver, lambda: None)
    assert not hub.downloading("CAM")


async def test_a_recording_that_never_starts_times_out():
    hub = DownloadHub(start_timeout=0.2)

    async def silent(download: Download) -> None:
        await asyncio.sleep(60)

    async def deliver(frame: MediaFrame) -> None:
        return None

    with pytest.raises(Exception, match="did not start"):
        await hub.start("CAM", OWNER, silent, deliver, lambda: None)
    assert not hub.downloading("CAM")
    await hub.stop_all()


def test_a_damaged_clip_is_refused_with_a_clip_error_never_a_crash():
    clip = encode_clip(seconds=1.0)
    random = Random(7)
    for _ in range(300):
        damaged = bytearray(clip)
        for _ in range(random.randint(1, 40)):
            damaged[random.randrange(len(damaged))] = random.randrange(256)
        cut = damaged[:random.randrange(len(damaged))] if random.random() < 0.3 else damaged
        try:
            frames = clip_frames(bytes(cut))
        except ClipError:
            continue
        assert any(isinstance(f, VideoFrame) for f in frames)
    with pytest.raises(ClipError):
        clip_frames(b"not an mp4 at all")
