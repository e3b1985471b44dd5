"""The simulated cloud's recordings: a short MP4 of the porch with the doorbell's sound.

Real SkyBell clips are MP4 files with H.264 video and AAC sound.  The simulator encodes one
such clip, of a known length, so that a download can be checked frame for frame and second for
second against what was served.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np

from bridge.simulators.doorbird.live import Porch

CLIP_SECONDS = 3.0
CLIP_FPS = 10
CLIP_SIZE = (320, 240)
CLIP_TONE_HZ = 440.0
AUDIO_RATE = 16000
AAC_SAMPLES = 1024


def encode_clip(seconds: float = CLIP_SECONDS, fps: int = CLIP_FPS) -> bytes:
    """An MP4 clip: H.264 of the porch (a visitor at the door) and an AAC tone, both
    ``seconds`` long.  Blocking: a few hundred milliseconds of encoding."""
    width, height = CLIP_SIZE
    porch = Porch(width, height)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.codec_context.layout = "mono"
        for index in range(round(seconds * fps)):
            frame = porch.frame(index / fps, visitor=True)
            frame.pts = index
            container.mux(video.encode(frame))
        samples = round(seconds * AUDIO_RATE)
        wave = (np.sin(2 * np.pi * CLIP_TONE_HZ * np.arange(samples) / AUDIO_RATE) * 0.3)
        for start in range(0, samples, AAC_SAMPLES):
            chunk = wave[start:start + AAC_SAMPLES].astype(np.float32).reshape(1, -1)
            piece = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            piece.sample_rate, piece.pts = AUDIO_RATE, start
            piece.time_base = Fraction(1, AUDIO_RATE)
            container.mux(audio.encode(piece))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return buffer.getvalue()
