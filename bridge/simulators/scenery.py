"""Camera pictures for the simulators: real JPEGs, encoded with PyAV, that change over time.

A picture shows a moving bar whose position and colour follow the clock, and a visitor (a
bright block) while someone is at the door, so that successive snapshots differ the way a real
camera's do and a test can tell a fresh picture from a stale one.
"""

from __future__ import annotations

import time
from fractions import Fraction

import av

WIDTH, HEIGHT = 640, 480


class Camera:
    """Encodes pictures of the simulated porch."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT, seed: int = 0) -> None:
        if width % 32 or height % 32:
            raise ValueError("picture sizes are multiples of 32")
        self.width, self.height, self.seed = width, height, seed
        self._codec = av.CodecContext.create("mjpeg", "w")
        self._codec.width, self._codec.height = width, height
        self._codec.pix_fmt = "yuvj420p"
        self._codec.time_base = Fraction(1, 25)

    def jpeg(self, moment: float | None = None, visitor: bool = False) -> bytes:
        """One JPEG picture of the porch at ``moment`` (default: now)."""
        moment = time.time() if moment is None else moment
        w, h = self.width, self.height
        tick = int(moment * 8) + self.seed * 97
        luma = bytearray(self._background(h, w))
        bar = tick % w
        width = min(12, w - bar)
        for row in range(h):
            start = row * w + bar
            luma[start:start + width] = b"\xeb" * width
        if visitor:
            for row in range(h // 3, h - 40):
                start = row * w + w // 3
                luma[start:start + w // 3] = b"\xd0" * (w // 3)
        chroma = (w // 2) * (h // 2)
        frame = av.VideoFrame(w, h, "yuvj420p")
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(bytes([(tick * 3) % 256]) * chroma)
        frame.planes[2].update(bytes([(128 + tick) % 256]) * chroma)
        packets = self._codec.encode(frame)
        return bytes(packets[0])

    @staticmethod
    def _background(h: int, w: int) -> bytes:
        # a vertical gradient: sky above, a darker porch below
        return b"".join(bytes([40 + (row * 120) // h]) * w for row in range(h))
