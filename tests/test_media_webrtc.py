"""The WebRTC glue of the media core: received H.264 passes through undecoded, and a client's
voice leaves as real-time PCM for aiortc to encode."""

from __future__ import annotations

import asyncio
import itertools
import time

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bridge.media import webrtc
from bridge.media.hub import VideoFrame
from bridge.simulators.skybell.master import HEIGHT, WIDTH, PorchVideo
from tests.media import decode_h264
from tests.test_media_audio import pitch
from tests.test_talkback import adts_tone


async def connected_pair(track: MediaStreamTrack) -> tuple[RTCPeerConnection,
                                                           RTCPeerConnection,
                                                           asyncio.Future[MediaStreamTrack]]:
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    viewer.on("track", lambda t: received.done() or received.set_result(t))
    transceiver = viewer.addTransceiver("video", direction="recvonly")
    transceiver.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("video").codecs
                                     if c.mimeType == "video/H264"])
    await viewer.setLocalDescription(await viewer.createOffer())
    await sender.setRemoteDescription(viewer.localDescription)
    sender.addTrack(track)
    await sender.setLocalDescription(await sender.createAnswer())
    await viewer.setRemoteDescription(sender.localDescription)
    return viewer, sender, received


async def test_received_h264_arrives_as_the_encoded_access_units_and_decodes():
    viewer, sender, received = await connected_pair(PorchVideo(lambda: False, lambda: False))
    frames: list[VideoFrame] = []
    video = webrtc.VideoIn(frames.append)
    track = await asyncio.wait_for(received, 10)
    reading = asyncio.ensure_future(video.run(track))
    try:
        async with asyncio.timeout(20):
            while len(frames) < 20:
                await asyncio.sleep(0.05)
    finally:
        reading.cancel()
        await viewer.close()
        await sender.close()
    assert frames[0].keyframe and frames[0].data.startswith(b"\x00\x00\x00\x01")
    assert (frames[0].info.width, frames[0].info.height) == (WIDTH, HEIGHT)
    assert 14 <= frames[0].info.fps <= 16
    decoded = decode_h264([f.data for f in frames])
    assert len(decoded) >= len(frames) - 2
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))


async def test_a_track_that_arrives_decoded_fails_loudly():
    class Decoded(MediaStreamTrack):
        kind = "video"

        async def recv(self) -> av.VideoFrame:
            return av.VideoFrame(16, 16, "yuv420p")

    with pytest.raises(RuntimeError, match="pass-through"):
        await webrtc.VideoIn(lambda frame: None).run(Decoded())


async def test_the_voice_track_keeps_real_time_and_carries_the_clients_tone():
    voice = webrtc.VoiceTrack()
    for adts in adts_tone(1000, seconds=1.0):
        voice.say(await asyncio.to_thread(voice.decode, adts))
    started = time.monotonic()
    pcm = []
    for _ in range(50):  # one second
        frame = await voice.recv()
        assert frame.sample_rate == webrtc.VOICE_RATE and frame.samples == webrtc.VOICE_SAMPLES
        pcm.append(frame.to_ndarray().reshape(-1))
    assert 0.9 < time.monotonic() - started < 1.5
    samples = np.concatenate(pcm)
    assert abs(pitch(list(samples[:30000]), webrtc.VOICE_RATE) - 1000) < 20
    assert float(np.abs(samples[-4800:]).max()) == 0  # silence once the words run out
    with pytest.raises(ValueError):
        voice.decode(b"not aac at all")
    voice.stop()
    with pytest.raises(MediaStreamError):
        await voice.recv()
