"""The doorbell's side of a SkyBell live view: a WebRTC MASTER peer made with aiortc.

A real SkyBell answers a viewer's offer with H.264 video and its microphone, and plays what the
viewer sends on its loudspeaker.  Here the picture is the simulators' porch with a running clock
(encoded once per viewer, on a worker thread, only while watched), the microphone a steady
440 Hz tone, and the loudspeaker a recorder whose pitch a test can measure.

The video is sent pre-encoded (aiortc packetises ``av.Packet`` objects as they are) so that the
simulator, not aiortc's encoder, chooses the stream's shape: baseline H.264 with a key frame and
its parameter sets every second, as a doorbell's encoder sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import structlog
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from bridge.simulators.doorbird.live import H264Encoder, Porch
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="simulator.skybell")

WIDTH, HEIGHT, FPS = 640, 360, 15
TONE_HZ = 440.0
AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms
VIDEO_CLOCK = Fraction(1, 90000)
_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+) (\d+)( typ .*)$", re.MULTILINE)


class Loudspeaker:
    """What the doorbell heard from its viewers: the last second of sound, for its pitch."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._recent = np.zeros(0, dtype=np.float32)
        self._rate = AUDIO_RATE

    def play(self, frame: av.AudioFrame) -> None:
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        self._rate = frame.sample_rate
        self.seconds += len(samples) / frame.sample_rate
        self._recent = np.concatenate([self._recent, samples.astype(np.float32)])[-self._rate:]

    def pitch(self) -> float | None:
        """The dominant frequency of the last second heard, None for silence."""
        if len(self._recent) < self._rate // 2 or float(np.abs(self._recent).max()) < 100:
            return None
        window = self._recent * np.hanning(len(self._recent))
        spectrum = np.abs(np.fft.rfft(window))
        return float(np.argmax(spectrum) * self._rate / len(window))


class PorchVideo(MediaStreamTrack):
    """The doorbell's camera; waits (sending nothing) while ``stalled()``."""

    kind = "video"

    def __init__(self, stalled: Callable[[], bool], visitor: Callable[[], bool]) -> None:
        super().__init__()
        self._stalled, self._visitor = stalled, visitor
        self._encoder: H264Encoder | None = None
        self._porch = Porch(WIDTH, HEIGHT)
        self._start = 0.0
        self._number = 0
        self.sent = 0

    async def recv(self) -> av.Packet:
        if self._encoder is None:
            self._encoder = await asyncio.to_thread(H264Encoder, WIDTH, HEIGHT, FPS)
            self._start = time.monotonic()
        while True:
            while self._stalled():
                await asyncio.sleep(0.1)
            due = self._start + self._number / FPS
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            number = self._number
            # behind (a busy machine): skip the frames whose moment has passed
            self._number = max(number + 1, int((time.monotonic() - self._start) * FPS))
            units = await asyncio.to_thread(self._encode, time.time())
            if units:
                break
        packet = av.Packet(b"".join(units))
        packet.pts = number * 90000 // FPS
        packet.time_base = VIDEO_CLOCK
        self.sent += 1
        return packet

    def _encode(self, moment: float) -> list[bytes]:
        assert self._encoder is not None
        return [data for data, _ in self._encoder.encode(self._porch.frame(moment,
                                                                           self._visitor()))]


class Microphone(MediaStreamTrack):
    """The doorbell's microphone: a steady tone in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, stalled: Callable[[], bool]) -> None:
        super().__init__()
        self._stalled = stalled
        self._start: float | None = None
        self._sent = 0
        self._period = np.sin(2 * np.pi * TONE_HZ * np.arange(AUDIO_RATE) / AUDIO_RATE)

    async def recv(self) -> av.AudioFrame:
        while self._stalled():
            await asyncio.sleep(0.1)
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sent * AUDIO_FRAME / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        offset = (self._sent * AUDIO_FRAME) % AUDIO_RATE
        chunk = np.roll(self._period, -offset)[:AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray((chunk * 8000).astype(np.int16).reshape(1, -1),
                                           format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._sent * AUDIO_FRAME
        frame.time_base = Fraction(1, AUDIO_RATE)
        self._sent += 1
        return frame


class Master:
    """One viewer's peer connection with the doorbell."""

    def __init__(self, ice_servers: list[RTCIceServer], *, stalled: Callable[[], bool],
                 visitor: Callable[[], bool], loudspeaker: Loudspeaker,
                 ended: Callable[[Master], None]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self.video = PorchVideo(stalled, visitor)
        self._stalled = stalled
        self._loudspeaker = loudspeaker
        self._ended = ended
        self._tasks = BackgroundTasks("simulator live view")
        self.closing = False
        self.pc.on("track", self._track)
        self.pc.on("connectionstatechange", self._state)

    async def answer(self, offer_sdp: str, *, lead_nowhere: bool = False) -> str:
        """The answer to a viewer's offer (every candidate in it: aiortc gathers first).
        ``lead_nowhere`` points both sides' candidates at a closed port, so that neither can
        reach the other and ICE fails."""
        if lead_nowhere:
            offer_sdp = _CANDIDATE.sub(r"\g<1>127.0.0.1 9\g<4>", offer_sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":  # a doorbell encodes H.264, nothing else
                transceiver.setCodecPreferences([
                    c for c in RTCRtpSender.getCapabilities("video").codecs
                    if c.mimeType.lower() == "video/h264"])
                self.pc.addTrack(self.video)
            elif transceiver.kind == "audio":
                self.pc.addTrack(Microphone(self._stalled))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp = self.pc.localDescription.sdp
        if lead_nowhere:
            sdp = _CANDIDATE.sub(r"\g<1>127.0.0.1 9\g<4>", sdp)
        return sdp

    def _track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.spawn(self._listen(track), name="simulator loudspeaker")

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                self._loudspeaker.play(frame)

    def _state(self) -> None:
        """The viewer left or ICE failed: whoever owns this master closes it."""
        if self.pc.connectionState in ("failed", "closed") and not self.closing:
            self._ended(self)

    async def close(self) -> None:
        self.closing = True
        await self.pc.close()
        await self._tasks.cancel_all()
