"""SkyBell recordings for eufy clients: an activity's clip, found through the event records,
downloaded through the bridge from the SkyBell simulator as download events, and proven with
real decoders against what the simulator served."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bridge.media.audio import AacDecoder
from bridge.simulators.skybell import cloud as sim_cloud
from bridge.simulators.skybell.clips import CLIP_FPS, CLIP_SECONDS, CLIP_SIZE, CLIP_TONE_HZ
from tests.media import decode_h264, payloads
from tests.skybell_rig import FRONT
from tests.test_media_audio import pitch, samples_of
from tests.wsclient import PATIENCE, Client, until


async def clip_reference(rig: Any, client: Client) -> str:
    """Ring the doorbell and wait for the activity's clip to be ready: its path."""
    await rig.sim_call("POST", f"/_sim/devices/{rig.device_id}/ring")
    records: list[dict[str, Any]] = []

    async def ready() -> bool:
        nonlocal records
        records = (await client.ok("driver.get_video_events"))["events"]
        return bool(records) and records[0]["video_ready"]

    async with asyncio.timeout(PATIENCE):
        while not await ready():
            await asyncio.sleep(0.05)
    return records[0]["cloud_path"]


async def download_events(client: Client) -> list[dict[str, Any]]:
    """Everything from ``download started`` to ``download finished``."""
    received = []
    async with asyncio.timeout(PATIENCE):
        while True:
            event = await client.events.get()
            if event["event"].startswith("download"):
                received.append(event)
            if event["event"] == "download finished":
                return received


async def listening_client(rig: Any) -> Client:
    client = await rig.client()
    await client.ok("start_listening")
    return client


async def test_a_clip_downloads_as_events_that_decode_to_what_was_served(skybell_rig):
    rig = await skybell_rig()
    client = await listening_client(rig)
    path = await clip_reference(rig, client)
    assert path.startswith("/activity/") and path.endswith("/video")
    await client.ok("device.start_download", serialNumber=FRONT, path=path, cipherId=0)
    events = await download_events(client)
    assert events[0]["event"] == "download started"
    video = [e for e in events if e["event"] == "download video data"]
    audio = [e for e in events if e["event"] == "download audio data"]
    frames = decode_h264(payloads(video))
    assert len(frames) == len(video) == CLIP_FPS * CLIP_SECONDS
    assert {(f.width, f.height) for f in frames} == {CLIP_SIZE}
    assert video[0]["metadata"] == {"videoCodec": "H264", "videoFPS": CLIP_FPS,
                                    "videoHeight": CLIP_SIZE[1], "videoWidth": CLIP_SIZE[0]}
    decoder = AacDecoder()
    sound = [f for data in payloads(audio) for f in decoder.decode(data)]
    assert abs(sum(f.samples for f in sound) / sound[0].sample_rate - CLIP_SECONDS) < 0.15
    assert abs(pitch(samples_of(sound), sound[0].sample_rate) - CLIP_TONE_HZ) < 10
    assert {e["metadata"]["audioCodec"] for e in audio} == {"AAC"}
    assert not (await client.ok("device.is_downloading", serialNumber=FRONT))["downloading"]


async def test_one_download_at_a_time_per_device(skybell_rig):
    rig = await skybell_rig()
    owner, other = await listening_client(rig), await listening_client(rig)
    path = await clip_reference(rig, owner)
    release = asyncio.Event()
    original = rig.sim.cloud.video

    async def slow_video() -> bytes:  # the clip arrives only when the test says so
        await release.wait()
        return await original()

    rig.sim.cloud.video = slow_video
    starting = asyncio.ensure_future(owner.ok("device.start_download", serialNumber=FRONT,
                                              path=path,
                                              cipherId=0))
    await until(lambda: rig.bridge.driver.downloads.downloading(FRONT))
    assert (await owner.ok("device.is_downloading", serialNumber=FRONT))["downloading"]
    again = await owner.command("device.start_download", serialNumber=FRONT, path=path,
                                 cipherId=0)
    assert again["errorCode"] == "device_download_already_running"
    theirs = await other.command("device.start_download", serialNumber=FRONT, path=path,
                                 cipherId=0)
    assert theirs["errorCode"] == "device_only_one_download_at_a_time"
    refused = await other.command("device.cancel_download", serialNumber=FRONT)
    assert refused["errorCode"] == "device_download_not_running"
    release.set()
    await starting
    await download_events(owner)
    assert not (await owner.ok("device.is_downloading", serialNumber=FRONT))["downloading"]
    nothing = await owner.command("device.cancel_download", serialNumber=FRONT)
    assert nothing["errorCode"] == "device_download_not_running"


async def test_a_missing_activity_or_a_foreign_path_answers_at_once(skybell_rig):
    rig = await skybell_rig()
    client = await listening_client(rig)
    requests = rig.sim.cloud.requests
    for path in ("https://evil.example/clip.mp4", "/activity/../devices/x", ""):
        result = await client.command("device.start_download", serialNumber=FRONT, path=path,
                                 cipherId=0)
        assert result["errorCode"] == "device_invalid_command_value", path
    assert rig.sim.cloud.requests == requests  # refused without asking the cloud
    started = time.monotonic()
    result = await client.command("device.start_download", serialNumber=FRONT,
                                  path="/activity/no-such-activity/video", cipherId=0)
    assert result["errorCode"] == "device_invalid_command_value"
    assert time.monotonic() - started < 2
    assert not (await client.ok("device.is_downloading", serialNumber=FRONT))["downloading"]


async def test_a_lapsed_download_address_is_asked_for_again(skybell_rig, monkeypatch):
    rig = await skybell_rig()
    client = await listening_client(rig)
    path = await clip_reference(rig, client)
    issued = []
    original = rig.sim.cloud.video_url

    def first_one_lapsed(activity_id: str) -> str:
        monkeypatch.setattr(sim_cloud, "VIDEO_URL_SECONDS", -1 if not issued else 300)
        issued.append(activity_id)
        return original(activity_id)

    rig.sim.cloud.video_url = first_one_lapsed
    await client.ok("device.start_download", serialNumber=FRONT, path=path,
                                 cipherId=0)
    events = await download_events(client)
    assert len(issued) == 2
    assert len([e for e in events if e["event"] == "download video data"]) == \
        CLIP_FPS * CLIP_SECONDS


async def test_a_client_that_goes_away_ends_its_download(skybell_rig):
    rig = await skybell_rig()
    client = await listening_client(rig)
    path = await clip_reference(rig, client)
    await client.ok("device.start_download", serialNumber=FRONT, path=path,
                                 cipherId=0)
    await client.close()
    await until(lambda: not rig.bridge.driver.downloads.downloading(FRONT))


@pytest.mark.parametrize("schema", [3, 12])
async def test_older_schemas_download_too(skybell_rig, schema):
    rig = await skybell_rig()
    client = await Client.connect(rig.bridge.url, schema=schema)
    await client.ok("start_listening")
    path = await clip_reference(rig, client)
    await client.ok("device.start_download", serialNumber=FRONT, path=path,
                                 cipherId=0)
    events = await download_events(client)
    assert events[0]["event"] == "download started"
