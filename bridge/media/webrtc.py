"""What a WebRTC live view gives the media core, and what the core sends back, with aiortc.

Video: eufy clients take H.264 access units, which is what a WebRTC peer sends, so the picture
should pass through untouched.  aiortc, however, always decodes what it receives: its receiver
reassembles each frame from RTP (already Annex B) and hands it to the decoder that
``aiortc.rtcrtpreceiver.get_decoder`` returns.  :func:`install` narrows that one name so that
H.264 "decodes" to the encoded access unit itself, sparing a decode and a re-encode per frame
(tens of milliseconds of CPU at 720p); other codecs are untouched.  It applies to every aiortc
receiver in the process, which suits the bridge: nothing in it wants decoded WebRTC video.
:class:`VideoIn` checks that the hook is honoured and fails loudly if a future aiortc ignores it.

Audio: the peer's sound (aiortc decodes Opus or G.711 to PCM) becomes AAC-LC ADTS frames, and
a client's talkback (AAC ADTS) becomes PCM frames that aiortc encodes for the peer, paced in real
time by :class:`VoiceTrack`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import aiortc.rtcrtpreceiver
import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from bridge.media.audio import AacDecoder, AacEncoder
from bridge.media.h264 import AccessUnits
from bridge.media.hub import AudioFrame, VideoFrame, VideoInfo

RTP_VIDEO_CLOCK = 90000
VOICE_RATE = 48000
VOICE_SAMPLES = 960  # 20 ms, Opus's usual frame


@dataclass(slots=True)
class EncodedVideo:
    """An H.264 access unit as received (Annex B), with its RTP timestamp."""

    data: bytes
    timestamp: int


class _PassThrough:
    def decode(self, encoded_frame: Any) -> list[EncodedVideo]:
        return [EncodedVideo(bytes(encoded_frame.data), int(encoded_frame.timestamp))]


def install() -> None:
    """Make aiortc hand over received H.264 undecoded (idempotent)."""
    original = aiortc.rtcrtpreceiver.get_decoder
    if getattr(original, "passes_h264", False):
        return

    def get_decoder(codec: Any) -> Any:
        if codec.mimeType.lower() == "video/h264":
            return _PassThrough()
        return original(codec)

    get_decoder.passes_h264 = True  # type: ignore[attr-defined]
    aiortc.rtcrtpreceiver.get_decoder = get_decoder


install()


def _picture_size(access_unit: bytes) -> tuple[int, int]:
    """Width and height of a key frame (with its parameter sets), decoded once."""
    codec = av.CodecContext.create("h264", "r")
    frames = list(codec.decode(av.Packet(access_unit))) or list(codec.decode(None))
    if not frames:
        raise ValueError("the first key frame does not decode")
    return frames[0].width, frames[0].height


class VideoIn:
    """A received H.264 track as the hub's :class:`VideoFrame`s.

    The first key frame waits for the frame after it: their RTP timestamps give the frame rate
    that the clients' metadata carries (and its size is read by decoding it, once, off the
    event loop).
    """

    def __init__(self, deliver: Callable[[VideoFrame], None]) -> None:
        self._deliver = deliver
        self._units = AccessUnits()
        self._info: VideoInfo | None = None
        self._held: tuple[bytes, bool, int] | None = None
        self._first_timestamp: int | None = None
        self.frames = 0

    async def run(self, track: MediaStreamTrack) -> None:
        """Until the track ends."""
        while True:
            try:
                received = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(received, EncodedVideo):
                raise RuntimeError("aiortc decoded the video: the H.264 pass-through hook "
                                   "is not in effect")
            converted = self._units.convert(received.data)
            if converted is None:
                continue
            data, keyframe = converted
            await self._frame(data, keyframe, received.timestamp)

    async def _frame(self, data: bytes, keyframe: bool, timestamp: int) -> None:
        if self._first_timestamp is None:
            self._first_timestamp = timestamp
        if self._info is None:
            if self._held is None:
                if keyframe:
                    self._held = (data, keyframe, timestamp)
                return  # nothing before the first key frame can be shown
            first, _, first_stamp = self._held
            step = (timestamp - first_stamp) % 2**32
            fps = round(RTP_VIDEO_CLOCK / step, 2) if 0 < step < RTP_VIDEO_CLOCK else 15.0
            width, height = await asyncio.to_thread(_picture_size, first)
            self._info = VideoInfo("H264", fps, width, height)
            self._send(first, True, first_stamp)
        self._send(data, keyframe, timestamp)

    def _send(self, data: bytes, keyframe: bool, timestamp: int) -> None:
        assert self._info is not None and self._first_timestamp is not None
        pts = ((timestamp - self._first_timestamp) % 2**32) / RTP_VIDEO_CLOCK
        self.frames += 1
        self._deliver(VideoFrame(data, keyframe, self._info, pts))


class AudioIn:
    """A received audio track (PCM from aiortc's decoder) as AAC-LC ADTS frames."""

    def __init__(self, deliver: Callable[[AudioFrame], None]) -> None:
        self._deliver = deliver
        self._encoder = AacEncoder()
        self._seconds = 0.0

    async def run(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            for adts in await asyncio.to_thread(self._encoder.encode, frame):
                self._deliver(AudioFrame(adts, pts=self._seconds))
                self._seconds += 1024 / self._encoder.rate


class VoiceTrack(MediaStreamTrack):
    """The audio a viewer sends its peer: a client's talkback, silence in between.

    aiortc pulls a frame whenever it has sent the last one, so this track keeps time itself:
    one 20 ms frame per 20 ms.  It sends silence while nobody talks rather than nothing, so the
    peer's jitter buffer and the RTP clock run steadily and a talk starts without a gap.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm = np.zeros(0, dtype=np.int16)
        self._decoder = AacDecoder()
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=VOICE_RATE)
        self._start: float | None = None
        self._sent = 0
        self.spoken = 0.0
        """Seconds of a client's voice sent so far."""

    def decode(self, adts: bytes) -> np.ndarray:
        """One AAC ADTS frame of a client's voice as PCM for :meth:`say` (ValueError when it
        does not decode; the next frame decodes afresh).  Blocking: call it off the event
        loop, one call at a time."""
        try:
            frames = self._decoder.decode(adts)
        except ValueError:
            self._decoder = AacDecoder()
            raise
        pieces = [resampled.to_ndarray().reshape(-1) for frame in frames
                  for resampled in self._resampler.resample(frame)]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)

    def say(self, samples: np.ndarray) -> None:
        """Queue decoded voice (on the event loop); beyond three seconds the oldest goes."""
        self._pcm = np.concatenate([self._pcm, samples])[-VOICE_RATE * 3:]

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sent * VOICE_SAMPLES / VOICE_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        chunk, self._pcm = self._pcm[:VOICE_SAMPLES], self._pcm[VOICE_SAMPLES:]
        if len(chunk):
            self.spoken += len(chunk) / VOICE_RATE
        if len(chunk) < VOICE_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(VOICE_SAMPLES - len(chunk), np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = VOICE_RATE
        frame.pts = self._sent * VOICE_SAMPLES
        frame.time_base = Fraction(1, VOICE_RATE)
        self._sent += 1
        return frame
