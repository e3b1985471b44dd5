"""A still picture of a live stream: its latest key frame, decoded and encoded as JPEG.

A key frame carries its SPS and PPS (see :class:`bridge.media.hub.VideoFrame`), so it decodes
on its own; this blocks (PyAV), callers run it off the event loop.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from bridge.media.hub import VideoFrame


def jpeg(keyframe: VideoFrame, quality: int = 5) -> bytes:
    """The key frame as a JPEG of the stream's size (``quality``: 2 best to 31 worst)."""
    decoder = av.CodecContext.create("h264", "r")
    packets = [*decoder.parse(keyframe.data), *decoder.parse(b"")]  # b"": the unit is whole
    pictures = [p for packet in packets for p in decoder.decode(packet)]
    pictures += decoder.decode(None)
    if not pictures:
        raise ValueError("the key frame holds no picture")
    picture = pictures[0]
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = picture.width, picture.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)  # one picture; any rate will do
    encoder.options = {"qmin": str(quality), "qmax": str(quality)}
    out = io.BytesIO()
    for packet in encoder.encode(picture.reformat(format="yuvj420p")):
        out.write(bytes(packet))
    for packet in encoder.encode(None):
        out.write(bytes(packet))
    return out.getvalue()
