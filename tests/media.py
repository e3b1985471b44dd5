"""Real media for tests: H.264 access units encoded with PyAV, and decoding of what clients
receive, so that tests prove pictures with a real decoder."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from functools import cache
from typing import Any

import av

from tests.wsclient import PATIENCE, Client

WIDTH, HEIGHT, FPS, GOP = 320, 240, 20, 10


@cache
def h264_access_units(count: int = 40) -> tuple[tuple[bytes, bool], ...]:
    """``count`` access units (Annex B, SPS and PPS before each key frame) of a picture that
    changes every frame, with a key frame every ``GOP`` frames."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS, 1)
    codec.gop_size = GOP
    codec.options = {"preset": "ultrafast", "tune": "zerolatency",
                     "x264-params": f"repeat-headers=1:keyint={GOP}:min-keyint={GOP}:scenecut=0"}
    units: list[tuple[bytes, bool]] = []
    for index in range(count):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane_index, plane in enumerate(frame.planes):
            shade = (index * 7 + plane_index * 50) % 256
            plane.update(bytes([shade]) * plane.buffer_size)
        frame.pts = index
        units.extend((bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame))
    units.extend((bytes(p), bool(p.is_keyframe)) for p in codec.encode(None))
    return tuple(units)


def decode_h264(buffers: list[bytes]) -> list[av.VideoFrame]:
    """Decode access units as a client would; raises on a decoder error."""
    codec = av.CodecContext.create("h264", "r")
    frames: list[av.VideoFrame] = []
    for data in buffers:
        for packet in codec.parse(data):
            frames.extend(codec.decode(packet))
    for packet in codec.parse(b""):
        frames.extend(codec.decode(packet))
    frames.extend(codec.decode(None))
    return frames


async def media_events(client: Client, kind: str, count: int) -> list[dict[str, Any]]:
    """The next ``count`` ``livestream {kind} data`` events this client receives (others are
    skipped); fails when the stream stops first."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(PATIENCE):
        while len(found) < count:
            event = await client.events.get()
            if event["event"] == f"livestream {kind} data":
                found.append(event)
            elif event["event"] == "livestream stopped":
                raise AssertionError(f"the stream stopped after {len(found)} {kind} frames")
    return found


def payloads(events: list[dict[str, Any]]) -> list[bytes]:
    """The bytes of each event's Buffer."""
    return [bytes(e["buffer"]["data"]) for e in events]
