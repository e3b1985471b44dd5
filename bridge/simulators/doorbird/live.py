"""What the simulated station streams: its porch as H.264 with a running clock, and its
microphone's tone as G.711 µ-law.

A :class:`LiveCamera` is one RTSP path's :class:`~bridge.media.rtsp.MediaSource`.  It encodes
only while subscribed, and the RTSP server subscribes once per path however many players
watch, so one encoder serves everyone.  Drawing and encoding run on a worker thread: a 720p
frame costs a few milliseconds of x264 (ultrafast, baseline, zero latency), which the event
loop serving HTTP and RTSP must not wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import cache

import av
import numpy as np

from bridge.media.rtsp import H264Track, MediaItem, PcmuTrack, Sink, Track, Unsubscribe
from bridge.media.rtsp.rtp import split_annexb

RTSP_FPS = 12
"""The seed's H.264 rate over RTSP ("up to 12 fps")."""
AUDIO_RATE = 8000
AUDIO_CHUNK = 160  # 20 ms of µ-law, as audio-receive.cgi sends it
TONE_HZ = 440.0

# A 5x7 bitmap font for the clock: one string of five bits per row.
_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
}


@cache
def _glyph(char: str, scale: int) -> np.ndarray:
    rows = [[bit == "1" for bit in row] for row in _GLYPHS[char].split()]
    return np.kron(np.array(rows, dtype=bool), np.ones((scale, scale), dtype=bool))


class Porch:
    """The station's camera picture at one size: the porch of the simulators' scenery (a sky to
    porch gradient, a bar sweeping across, a bright block while a visitor is there) with the
    time of day drawn to the hundredth of a second, so that every frame differs."""

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError("4:2:0 pictures have even sizes")
        self.width, self.height = width, height
        shades = 40 + (np.arange(height) * 120) // height
        self._sky = np.repeat(shades.astype(np.uint8)[:, None], width, axis=1)
        self._scale = max(2, height // 120)

    def frame(self, moment: float, visitor: bool = False) -> av.VideoFrame:
        w, h = self.width, self.height
        picture = np.empty((h * 3 // 2, w), np.uint8)
        luma = picture[:h]
        luma[:] = self._sky
        bar = int(moment * w / 4) % w  # crosses the picture in four seconds
        luma[:, bar:bar + max(4, w // 50)] = 235
        if visitor:
            luma[h // 3:h - h // 12, w // 3:2 * w // 3] = 208
        self._clock(luma, moment)
        tint = int(moment * 8)
        chroma = picture[h:].reshape(-1)
        quarter = (w // 2) * (h // 2)
        chroma[:quarter] = (tint * 3) % 256
        chroma[quarter:] = (128 + tint) % 256
        return av.VideoFrame.from_ndarray(picture, format="yuv420p")

    def _clock(self, luma: np.ndarray, moment: float) -> None:
        text = time.strftime("%H:%M:%S", time.localtime(moment)) + f".{int(moment * 100) % 100:02d}"
        scale = self._scale
        step, margin = 6 * scale, 2 * scale
        right = min(self.width, margin * 2 + step * len(text))
        luma[:margin * 2 + 7 * scale, :right] = 16  # a dark band keeps it readable
        for index, char in enumerate(text):
            x = margin + index * step
            if x + 5 * scale > self.width:
                break
            region = luma[margin:margin + 7 * scale, x:x + 5 * scale]
            region[_glyph(char, scale)] = 235


class H264Encoder:
    """x264 as a DoorBird's RTSP stream sends it: baseline, no B-frames, zero latency, a key
    frame every second with SPS and PPS in front of it."""

    def __init__(self, width: int, height: int, fps: int = RTSP_FPS) -> None:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = Fraction(1, fps)
        codec.framerate = Fraction(fps, 1)
        codec.gop_size = fps
        codec.thread_count = 1  # demo mode shares two cores with the bridge
        codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                         "x264-params": f"repeat-headers=1:keyint={fps}:min-keyint={fps}:"
                                        "scenecut=0"}
        self._codec = codec
        self._index = 0

    def encode(self, frame: av.VideoFrame) -> list[tuple[bytes, bool]]:
        """Access units (Annex B) for ``frame``, with whether each is a key frame."""
        frame.pts = self._index
        self._index += 1
        return [(bytes(p), bool(p.is_keyframe)) for p in self._codec.encode(frame)]


def parameter_sets(width: int, height: int) -> tuple[bytes, bytes]:
    """The SPS and PPS the encoder writes at this size, for the SDP of DESCRIBE."""
    encoder = H264Encoder(width, height)
    for data, _ in encoder.encode(Porch(width, height).frame(0.0)):
        nals = split_annexb(data)
        sps = next((n for n in nals if n[0] & 0x1F == 7), None)
        pps = next((n for n in nals if n[0] & 0x1F == 8), None)
        if sps and pps:
            return sps, pps
    raise RuntimeError("x264 wrote no parameter sets")


@cache
def mulaw_tone(seconds: float = 1.0, frequency: float = TONE_HZ) -> bytes:
    """The station's microphone: a tone in G.711 µ-law (a whole number of periods per second,
    so that it loops without a click), encoded by PyAV's pcm_mulaw encoder."""
    t = np.arange(int(AUDIO_RATE * seconds)) / AUDIO_RATE
    samples = (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = AUDIO_RATE
    codec = av.CodecContext.create("pcm_mulaw", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_RATE, "mono", "s16"
    codec.time_base = Fraction(1, AUDIO_RATE)
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


class LiveCamera:
    """One RTSP path of the station: H.264 of the porch at one size, and the microphone."""

    def __init__(self, width: int, height: int, visitor: Callable[[], bool],
                 fps: int = RTSP_FPS) -> None:
        self.width, self.height, self.fps = width, height, fps
        self._visitor = visitor
        self._parameters: tuple[bytes, bytes] | None = None
        self.encoded = 0
        """Frames encoded so far (all subscriptions), for tests and the state page."""

    async def prepare(self) -> None:
        """Learn the parameter sets off the event loop, before a player asks for them."""
        if self._parameters is None:
            self._parameters = await asyncio.to_thread(parameter_sets, self.width,
                                                       self.height)

    @property
    def tracks(self) -> Sequence[Track]:
        sps, pps = self._parameters or (None, None)
        return H264Track(sps=sps, pps=pps), PcmuTrack()

    async def subscribe(self, sink: Sink) -> Unsubscribe:
        encoder = await asyncio.to_thread(H264Encoder, self.width, self.height, self.fps)
        start = time.monotonic()
        tasks = [asyncio.create_task(self._video(sink, encoder, start), name="doorbird video"),
                 asyncio.create_task(self._audio(sink, start), name="doorbird audio")]

        def unsubscribe() -> None:
            for task in tasks:
                task.cancel()

        return unsubscribe

    async def _video(self, sink: Sink, encoder: H264Encoder, start: float) -> None:
        porch = Porch(self.width, self.height)
        number = 0
        while True:
            due = start + number / self.fps
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            units = await asyncio.to_thread(self._encode, porch, encoder, time.time())
            for data, keyframe in units:
                sink(MediaItem(0, data, number / self.fps, keyframe))
            # behind (a busy machine): skip the frames whose moment has passed
            number = max(number + 1, int((time.monotonic() - start) * self.fps))

    def _encode(self, porch: Porch, encoder: H264Encoder,
                moment: float) -> list[tuple[bytes, bool]]:
        self.encoded += 1
        return encoder.encode(porch.frame(moment, self._visitor()))

    async def _audio(self, sink: Sink, start: float) -> None:
        tone = mulaw_tone()
        sent = 0
        while True:
            due = int((time.monotonic() - start) * AUDIO_RATE / AUDIO_CHUNK) + 1
            while sent < due:
                offset = (sent * AUDIO_CHUNK) % len(tone)
                sink(MediaItem(1, tone[offset:offset + AUDIO_CHUNK],
                               sent * AUDIO_CHUNK / AUDIO_RATE))
                sent += 1
            await asyncio.sleep(AUDIO_CHUNK / AUDIO_RATE)
