"""The simulated cloud's activity clips: the porch in H.264 with the doorbell's microphone as
AAC, in an MP4 the way SkyBell's media host serves them.

A clip has a known length (``seconds`` at ``fps``) and a steady tone, so that a test can check
what a download delivers: how many pictures decode, how long they last, that the sound is
there.  Encoding takes a few hundred milliseconds of x264 and AAC; callers that share an event
loop run it on a worker thread.
"""

from __future__ import annotations

import io
import time
from fractions import Fraction

import av
import numpy as np

from bridge.simulators.doorbird.live import Porch

SECONDS = 3.0
FPS = 10
WIDTH, HEIGHT = 320, 240
AUDIO_RATE = 16000
TONE_HZ = 440.0
_AAC_FRAME = 1024  # samples per AAC-LC frame


def encode_clip(seconds: float = SECONDS, fps: int = FPS, width: int = WIDTH,
                height: int = HEIGHT, *, start: float | None = None,
                tone_hz: float = TONE_HZ) -> bytes:
    """An MP4 of the porch while a visitor stands there: ``seconds * fps`` H.264 pictures (a
    key frame every second) and as long an AAC-LC tone (16 kHz mono)."""
    start = time.time() if start is None else start
    porch = Porch(width, height)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, fps)
        video.codec_context.gop_size = fps
        video.codec_context.thread_count = 1  # demo mode shares two cores with the bridge
        video.codec_context.options = {
            "preset": "ultrafast", "profile": "baseline",
            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.codec_context.layout = "mono"
        audio.codec_context.bit_rate = 32000
        frames = round(seconds * fps)
        for index in range(frames):
            picture = porch.frame(start + index / fps, visitor=True)
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        samples = round(seconds * AUDIO_RATE)
        wave = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(samples) / AUDIO_RATE)).astype(
            np.float32)
        for offset in range(0, samples, _AAC_FRAME):
            chunk = wave[offset:offset + _AAC_FRAME]
            if len(chunk) < _AAC_FRAME:
                chunk = np.pad(chunk, (0, _AAC_FRAME - len(chunk)))
            sound = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            sound.sample_rate, sound.pts = AUDIO_RATE, offset
            container.mux(audio.encode(sound))
        container.mux(audio.encode(None))
    return buffer.getvalue()
