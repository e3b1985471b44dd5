"""Media benchmark: how fast live video is rendered for eufy clients.

Every H.264 access unit travels to a eufy client as ``{"type":"Buffer","data":[...]}`` JSON
(:mod:`bridge.media.buffers`), so this encoder bounds how many streams one core can relay.
The benchmark encodes a 720p stream with PyAV (12 fps, a key frame every 2 s; a doorbell
watching a still porch: P-frames under about 1 kB, key frames of 50 to 100 kB, which carry
most of the bytes), then measures on one core:

- the bridge's encoder, in MB of media per second, over that stream's access units, and per
  size class;
- ``orjson`` of the byte list, the obvious way and the yardstick (it must agree byte for byte).

The last line holds the figures other tools read, ``name=value`` separated by spaces; a
figure that cannot be measured yet is ``nan``, with a comment line saying why.

    python bench/media.py [--seconds 1.0] [--frames 96]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import orjson

from bridge.media.buffers import buffer_json

WIDTH, HEIGHT, FPS, GOP = 1280, 720, 12, 24
CRF = 26

FIGURES = ("encode_MBps", "cpu_percent_1_client", "cpu_percent_10_clients")
"""The last line's figures, in order."""

PENDING = {
    "cpu_percent_1_client": "needs the live-stream relay (a 720p stream to 1 client)",
    "cpu_percent_10_clients": "needs the live-stream relay (a 720p stream to 10 clients)",
}
"""Figures not measured yet, and why."""


def access_units(count: int) -> list[bytes]:
    """A doorbell-like 720p stream: a still scene with sensor noise and a moving object, so
    that P-frames stay small and key frames carry the whole picture."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS, 1)
    codec.gop_size = GOP
    codec.options = {"preset": "veryfast", "tune": "zerolatency", "crf": str(CRF),
                     "x264-params": f"repeat-headers=1:keyint={GOP}:min-keyint={GOP}:scenecut=0"}
    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    scene = ((rows // 40 + cols // 64) % 2 * 60 + rows * 100 // HEIGHT + 40
             + rng.integers(-4, 5, rows.shape)).astype(np.int16)  # walls, plants, shadows
    units: list[bytes] = []
    for index in range(count):
        luma = scene + rng.integers(-2, 3, scene.shape, dtype=np.int16)
        left = 100 + index * 12 % (WIDTH - 300)
        luma[300:500, left:left + 160] = 200
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(np.clip(luma, 0, 255).astype(np.uint8).tobytes())
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = index
        units.extend(bytes(packet) for packet in codec.encode(frame))
    units.extend(bytes(packet) for packet in codec.encode(None))
    return units


def megabytes_per_second(encode: Callable[[bytes], bytes], units: list[bytes],
                         seconds: float) -> float:
    """Best of several timed passes over all units (the best pass is the one the machine's
    other load disturbed least)."""
    size = sum(map(len, units))
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        for unit in units:
            encode(unit)
        elapsed = time.perf_counter() - start
        best = max(best, size / elapsed / 1e6)
        if time.perf_counter() > deadline:
            return best


def orjson_buffer(data: bytes) -> bytes:
    return orjson.dumps({"type": "Buffer", "data": list(data)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="time spent on each measurement")
    parser.add_argument("--frames", type=int, default=96, help="frames of video to encode")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, as a relay's event loop has
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    units = access_units(args.frames)
    sizes = sorted(map(len, units))
    print(f"stream: {len(units)} access units of {WIDTH}x{HEIGHT} at {FPS} fps, "
          f"{sum(sizes) / len(units) * FPS * 8 / 1e6:.2f} Mbit/s; sizes min {sizes[0]:,} B, "
          f"median {statistics.median(sizes):,.0f} B, max {sizes[-1]:,} B")
    for unit in units:
        if buffer_json(unit) != orjson_buffer(unit):
            sys.exit("the encoder disagrees with orjson")

    figures = {name: math.nan for name in FIGURES}
    figures["encode_MBps"] = megabytes_per_second(buffer_json, units, args.seconds)
    reference = megabytes_per_second(orjson_buffer, units, args.seconds)
    print(f"encoder: {figures['encode_MBps']:.0f} MB/s of media; "
          f"orjson of the byte list: {reference:.0f} MB/s")
    for low, high in ((0, 4096), (4096, 16384), (16384, 1 << 30)):
        group = [unit for unit in units if low <= len(unit) < high]
        if group:
            speed = megabytes_per_second(buffer_json, group, args.seconds / 3)
            print(f"  access units of {low:,} B to {min(high, sizes[-1] + 1) - 1:,} B "
                  f"({len(group)}): {speed:.0f} MB/s")

    for name, why in PENDING.items():
        print(f"# {name}: {why}")
    print(" ".join(f"{name}={figures[name]:.1f}" for name in FIGURES))


if __name__ == "__main__":
    main()
