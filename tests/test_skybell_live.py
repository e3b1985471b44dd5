"""SkyBell live view and talkback for eufy clients: the bridge connects as a WebRTC viewer to the
SkyBell simulator's signalling channel and aiortc doorbell, over real sockets, and what clients
receive is proven with real decoders; what they say is measured at the doorbell."""

from __future__ import annotations

import asyncio
import time

import av
import pytest

from bridge.media.audio import AacDecoder
from bridge.simulators.skybell.master import FPS, HEIGHT, TONE_HZ, WIDTH
from tests.leaks import resources, settled
from tests.media import media_events, payloads
from tests.skybell_rig import FRONT
from tests.test_doorbird_media import assert_plays
from tests.test_media_audio import pitch, samples_of
from tests.test_talkback import adts_tone, buffer
from tests.wsclient import PATIENCE, until

# -- live view -------------------------------------------------------------------------------

async def test_the_doorbell_advertises_live_view_talkback_and_rtsp(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    commands = (await client.ok("device.get_commands", serialNumber=FRONT))["commands"]
    assert {"start_livestream", "stop_livestream", "start_talkback", "talkback_audio_data",
            "stop_talkback", "start_rtsp_livestream"} <= set(commands)
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert props["rtspStream"] is True and props["rtspStreamUrl"].endswith(f"/{FRONT}")


async def test_the_live_view_decodes_from_the_events_alone(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await client.event("livestream started")
    events = await media_events(client, "video", 60)
    assert_plays(events, FPS)
    assert (events[0]["metadata"]["videoWidth"], events[0]["metadata"]["videoHeight"]) == (
        WIDTH, HEIGHT)
    assert (await rig.live())["viewers"] == 1
    sound = await media_events(client, "audio", 25)
    decoder = AacDecoder()
    frames = [f for data in payloads(sound) for f in decoder.decode(data)]
    assert abs(pitch(samples_of(frames), frames[0].sample_rate) - TONE_HZ) < 20


async def test_two_connections_share_one_peer_connection(skybell_rig):
    rig = await skybell_rig()
    first, second = await rig.client(), await rig.client()
    await first.ok("device.start_livestream", serialNumber=FRONT)
    await second.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(second, "video", 20)
    live = await rig.live()
    assert (live["viewers"], live["peer_connections"]) == (1, 1)
    await first.ok("device.stop_livestream", serialNumber=FRONT)
    await media_events(second, "video", 10)  # the other connection keeps watching
    await second.ok("device.stop_livestream", serialNumber=FRONT)
    await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)


async def test_an_expired_signed_url_is_replaced_by_one_the_bridge_signs(skybell_rig):
    rig = await skybell_rig(kvs_url_seconds=1)
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    assert_plays(await media_events(client, "video", 20), FPS)


async def test_the_rtsp_url_plays_while_a_client_watches_on_one_peer_connection(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 5)
    url = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"][
        "rtspStreamUrl"]

    def play() -> int:
        with av.open(url, options={"rtsp_transport": "tcp"}, timeout=PATIENCE) as container:
            decoded = 0
            for frame in container.decode(video=0):
                assert (frame.width, frame.height) == (WIDTH, HEIGHT)
                decoded += 1
                if decoded >= 50:
                    return decoded
        return decoded

    assert await asyncio.to_thread(play) >= 50
    await media_events(client, "video", 5)
    assert (await rig.live())["peer_connections"] == 1


async def test_stopping_leaves_no_task_no_socket_and_no_peer_connection(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    await client.ok("device.is_livestreaming", serialNumber=FRONT)
    await asyncio.sleep(0.5)
    before = resources()
    for _ in range(2):
        await client.ok("device.start_livestream", serialNumber=FRONT)
        await media_events(client, "video", 5)
        await client.ok("device.stop_livestream", serialNumber=FRONT)
        await client.event("livestream stopped")
        await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)
        assert not rig.sim.cloud.devices[rig.device_id].streaming
    await settled(before)


# -- trouble ---------------------------------------------------------------------------------

async def test_an_offline_doorbell_answers_a_connection_timeout_at_once(skybell_rig):
    rig = await skybell_rig()
    await rig.sim_call("POST", f"/_sim/devices/{rig.device_id}/offline")
    client = await rig.client()
    started = time.monotonic()
    result = await client.command("device.start_livestream", serialNumber=FRONT)
    assert result["errorCode"] == "station_connection_timeout"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("fault", ["kvs_refuse", "kvs_ice_fail"])
async def test_a_refused_channel_or_failed_ice_answers_an_error_and_leaves_nothing(
        skybell_rig, fault):
    rig = await skybell_rig()
    client = await rig.client()
    await client.ok("device.is_livestreaming", serialNumber=FRONT)
    before = resources()
    await rig.faults(**{fault: True})
    started = time.monotonic()
    result = await client.command("device.start_livestream", serialNumber=FRONT)
    assert result["errorCode"] == "station_connection_timeout"
    assert time.monotonic() - started < 12
    assert not (await client.ok("device.is_livestreaming", serialNumber=FRONT))[
        "livestreaming"]
    await rig.faults(**{fault: False})
    await settled(before)
    await client.ok("device.start_livestream", serialNumber=FRONT)  # recovered
    await media_events(client, "video", 5)


async def test_a_stalled_stream_ends_with_livestream_stopped(skybell_rig):
    rig = await skybell_rig(stall=1.5)
    client = await rig.client()
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=2)
    before = resources()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 5)
    await rig.faults(kvs_stall=True)
    started = time.monotonic()
    await client.event("livestream stopped")
    assert time.monotonic() - started < 4
    await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)
    await settled(before)


# -- talkback --------------------------------------------------------------------------------

async def test_a_clients_tone_reaches_the_doorbell_at_its_pitch(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    await client.ok("device.start_talkback", serialNumber=FRONT)
    await client.event("talkback started")
    for frame in adts_tone(1000, seconds=2.0):
        await client.ok("device.talkback_audio_data", serialNumber=FRONT,
                        buffer=buffer(frame))
        await asyncio.sleep(0.06)
    live = await rig.live()
    assert abs(live["received_audio_hz"] - 1000) <= 20
    assert live["peer_connections"] == 1
    other = await rig.client()
    refused = await other.command("device.start_talkback", serialNumber=FRONT)
    assert refused["errorCode"] == "device_only_one_talkback_at_a_time"
    await client.ok("device.stop_talkback", serialNumber=FRONT)
    await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)


async def test_talk_and_view_share_the_peer_connection(skybell_rig):
    rig = await skybell_rig()
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 5)
    await client.ok("device.start_talkback", serialNumber=FRONT)
    for frame in adts_tone(1000, seconds=1.0):
        await client.ok("device.talkback_audio_data", serialNumber=FRONT,
                        buffer=buffer(frame))
    await client.ok("device.stop_talkback", serialNumber=FRONT)
    await media_events(client, "video", 5)  # the view goes on after the talk
    assert (await rig.live())["peer_connections"] == 1
