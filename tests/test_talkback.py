"""Talkback through the bridge: one talker per device, the client's AAC delivered to the
device, and the talk ended by its client, by silence or by a disconnect."""

from __future__ import annotations

import pytest

from bridge.media.audio import AacDecoder, AacEncoder
from tests.doubles import DOORBELL
from tests.test_media_audio import pitch, samples_of, tone
from tests.wsclient import until


def adts_tone(hz: float = 1000, seconds: float = 1.0) -> list[bytes]:
    encoder = AacEncoder()
    return [f for frame in tone(hz, seconds, 16000) for f in encoder.encode(frame)]


def buffer(data: bytes) -> dict:
    return {"type": "Buffer", "data": list(data)}


async def test_a_client_speaks_through_the_doorbell(bridge, connect, backend):
    client = await connect(listen=True)
    await client.ok("device.start_talkback", serialNumber=DOORBELL)
    assert (await client.event("talkback started"))["serialNumber"] == DOORBELL
    assert (await client.ok("device.is_talkback_ongoing", serialNumber=DOORBELL))[
        "talkbackOngoing"] is True
    frames = adts_tone()
    for frame in frames:
        await client.ok("device.talkback_audio_data", serialNumber=DOORBELL,
                        buffer=buffer(frame))
    await until(lambda: len(backend.heard) == len(frames))
    assert backend.heard == frames
    decoder = AacDecoder()
    heard = [pcm for f in backend.heard for pcm in decoder.decode(f)]
    assert pitch(samples_of(heard), 16000) == pytest.approx(1000, abs=20)
    await client.ok("device.stop_talkback", serialNumber=DOORBELL)
    await client.event("talkback stopped")
    await until(lambda: backend.talks_ended == 1)
    assert (await client.ok("device.is_talkback_ongoing", serialNumber=DOORBELL))[
        "talkbackOngoing"] is False


async def test_one_talker_at_a_time(bridge, connect):
    talker, other = await connect(), await connect()
    assert await other.error("device.stop_talkback", serialNumber=DOORBELL) == \
        "device_talkback_not_running"
    await talker.ok("device.start_talkback", serialNumber=DOORBELL)
    assert await talker.error("device.start_talkback", serialNumber=DOORBELL) == \
        "device_talkback_already_running"
    assert await other.error("device.start_talkback", serialNumber=DOORBELL) == \
        "device_only_one_talkback_at_a_time"
    assert await other.error("device.talkback_audio_data", serialNumber=DOORBELL,
                             buffer=buffer(adts_tone(seconds=0.3)[0])) == \
        "device_talkback_not_running"
    await talker.ok("device.stop_talkback", serialNumber=DOORBELL)
    await other.ok("device.start_talkback", serialNumber=DOORBELL)


async def test_malformed_audio_is_refused_and_the_talk_goes_on(bridge, connect, backend):
    client = await connect()
    await client.ok("device.start_talkback", serialNumber=DOORBELL)
    for garbage in (b"hello", b"\xff\xf1" + b"\x00" * 20, b""):
        assert await client.error("device.talkback_audio_data", serialNumber=DOORBELL,
                                  buffer=buffer(garbage)) == "device_invalid_command_value"
    good = adts_tone(seconds=0.2)
    await client.ok("device.talkback_audio_data", serialNumber=DOORBELL,
                    buffer=buffer(b"".join(good)))  # several frames in one buffer are fine
    await until(lambda: backend.heard == good)


async def test_silence_and_disconnects_end_the_talk(bridge, connect, backend):
    bridge.driver.talks.idle_seconds = 0.3
    quiet = await connect()
    await quiet.ok("device.start_talkback", serialNumber=DOORBELL)
    await quiet.event("talkback stopped")  # nothing said for 0.3 s
    assert backend.talks_ended == 1
    leaving = await connect()
    bridge.driver.talks.idle_seconds = 60
    await leaving.ok("device.start_talkback", serialNumber=DOORBELL)
    await leaving.close()
    await until(lambda: backend.talks_ended == 2)
    assert not bridge.driver.talks.ongoing(DOORBELL)
