"""The conversions between what a DoorBird speaks and what eufy clients take.

A station sends G.711 µ-law and MJPEG (or H.264 over RTSP, which passes through untouched);
eufy clients take AAC-LC in ADTS framing and H.264 access units, and send AAC back for
talkback.  Each object here keeps codec state for one stream and does blocking CPU work:
callers run it off the event loop, one call at a time per object.
"""

from __future__ import annotations

from fractions import Fraction

import av

from bridge.media.audio import AacDecoder, AacEncoder, MulawDecoder, MulawEncoder
from bridge.media.h264 import AccessUnits


class MulawToAac:
    """The station's microphone (µ-law 8 kHz) as AAC-LC ADTS frames, 16 kHz mono."""

    def __init__(self) -> None:
        self._decoder = MulawDecoder()
        self._encoder = AacEncoder()

    def convert(self, mulaw: bytes) -> list[bytes]:
        return [adts for frame in self._decoder.decode(mulaw)
                for adts in self._encoder.encode(frame)]


class AacToMulaw:
    """A client's voice (AAC ADTS) as µ-law 8 kHz for the station's loudspeaker."""

    def __init__(self) -> None:
        self._decoder = AacDecoder()
        self._encoder = MulawEncoder()

    def convert(self, adts: bytes) -> bytes:
        """ValueError for a frame that does not decode.  The decoder is then replaced: its
        parser would otherwise keep the bad bytes and fail on the good frames after them."""
        try:
            return self._encoder.encode(self._decoder.decode(adts))
        except ValueError:
            self._decoder = AacDecoder()
            raise


class MjpegToH264:
    """JPEG pictures in, H.264 access units out, for stations (or firmware) without RTSP.

    The encoder is set for live view: no look-ahead or B-frames (a frame leaves as soon as it
    is encoded), parameter sets before every key frame, a key frame every two seconds so that
    a joining client waits at most that long for its first picture.  The size is the first
    picture's; later pictures are scaled to it.
    """

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.width = 0
        self.height = 0
        self._jpeg = av.CodecContext.create("mjpeg", "r")
        self._h264: av.VideoCodecContext | None = None
        self._units = AccessUnits()

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        self.width, self.height = width - width % 2, height - height % 2  # 4:2:0 needs even
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = self.width, self.height, "yuv420p"
        codec.time_base = Fraction(1, 1000)
        codec.framerate = Fraction(self.fps).limit_denominator(1000)
        keyint = max(1, round(2 * self.fps))
        codec.gop_size = keyint
        codec.options = {"preset": "ultrafast", "tune": "zerolatency",
                         "x264-params": f"repeat-headers=1:keyint={keyint}:scenecut=0"}
        return codec

    def encode(self, jpeg: bytes, seconds: float) -> list[tuple[bytes, bool]]:
        """Access units (Annex B, key frames with their parameter sets) of one picture taken
        ``seconds`` after the stream began; ValueError when the picture does not decode."""
        try:
            pictures = self._jpeg.decode(av.Packet(jpeg))
        except av.FFmpegError as exc:
            raise ValueError(f"undecodable JPEG: {exc}") from None
        out = []
        for picture in pictures:
            if self._h264 is None:
                self._h264 = self._open(picture.width, picture.height)
            frame = picture.reformat(width=self.width, height=self.height, format="yuv420p")
            frame.pict_type = av.video.frame.PictureType.NONE  # else every JPEG makes an IDR
            frame.pts = round(seconds * 1000)
            frame.time_base = self._h264.time_base
            for packet in self._h264.encode(frame):
                unit = self._units.convert(bytes(packet))
                if unit is not None:
                    out.append(unit)
        return out
