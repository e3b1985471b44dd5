"""Audio conversions between what eufy clients speak and what doorbells speak.

eufy clients receive and send AAC-LC in ADTS framing (16 kHz mono for talkback); doorbells
speak G.711 µ-law at 8 kHz (DoorBird) or whatever their WebRTC peer negotiates.  Everything
here goes through PyAV's codecs and resampler.  Each call does a little CPU work on small
frames; callers run them off the event loop when they run continuously.
"""

from __future__ import annotations

from collections.abc import Iterable

import av

AAC_RATE = 16000
MULAW_RATE = 8000
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
               8000, 7350)


def adts_header(payload: int, rate: int = AAC_RATE, channels: int = 1) -> bytes:
    """The 7-byte ADTS header of one AAC-LC frame of ``payload`` bytes (no CRC)."""
    length = payload + 7
    index = _ADTS_RATES.index(rate)
    profile = 1  # AAC LC (audio object type 2, minus one)
    return bytes((
        0xFF, 0xF1,  # sync word, MPEG-4, layer 0, no CRC
        (profile << 6) | (index << 2) | (channels >> 2),
        ((channels & 3) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 7) << 5) | 0x1F,  # buffer fullness 0x7FF (variable rate)
        0xFC,
    ))


def split_adts(data: bytes) -> list[bytes]:
    """The ADTS frames of ``data``; ValueError unless it is nothing but whole ADTS frames."""
    frames, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
            raise ValueError("not an ADTS frame")
        length = ((header[3] & 3) << 11) | (header[4] << 3) | (header[5] >> 5)
        if length < 7 or pos + length > len(data):
            raise ValueError("an ADTS frame runs past the end of the data")
        frames.append(data[pos:pos + length])
        pos += length
    if not frames:
        raise ValueError("no audio")
    return frames


class AacEncoder:
    """PCM frames of any rate and layout in, AAC-LC ADTS frames (16 kHz mono) out."""

    def __init__(self, rate: int = AAC_RATE, bit_rate: int = 32000) -> None:
        self.rate = rate
        self._codec = av.CodecContext.create("aac", "w")
        self._codec.sample_rate = rate
        self._codec.layout = "mono"
        self._codec.format = "fltp"
        self._codec.bit_rate = bit_rate
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)

    def encode(self, frame: av.AudioFrame | None) -> list[bytes]:
        """ADTS frames for what is ready (None flushes the encoder)."""
        frames = self._resampler.resample(frame) if frame is not None else [None]
        out = []
        for resampled in frames:
            for packet in self._codec.encode(resampled):
                data = bytes(packet)
                out.append(adts_header(len(data), self.rate) + data)
        return out


class AacDecoder:
    """ADTS AAC in (as clients send talkback), PCM frames out."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("aac", "r")

    def decode(self, adts: bytes) -> list[av.AudioFrame]:
        """Raises ValueError for data that is not ADTS AAC (the decoder stays usable)."""
        if len(adts) < 7 or adts[0] != 0xFF or adts[1] & 0xF0 != 0xF0:
            raise ValueError("not an ADTS frame")
        try:
            return [frame for packet in self._codec.parse(adts)
                    for frame in self._codec.decode(packet)]
        except av.FFmpegError as exc:
            raise ValueError(f"undecodable AAC: {exc}") from None


class MulawEncoder:
    """PCM frames in, G.711 µ-law bytes at 8 kHz mono out."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("pcm_mulaw", "w")
        self._codec.sample_rate = MULAW_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=MULAW_RATE)

    def encode(self, frames: Iterable[av.AudioFrame]) -> bytes:
        out = bytearray()
        for frame in frames:
            for resampled in self._resampler.resample(frame):
                for packet in self._codec.encode(resampled):
                    out += bytes(packet)
        return bytes(out)


class MulawDecoder:
    """G.711 µ-law bytes at 8 kHz mono in, PCM frames out."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("pcm_mulaw", "r")
        self._codec.sample_rate = MULAW_RATE
        self._codec.layout = "mono"
        self._pts = 0

    def decode(self, data: bytes) -> list[av.AudioFrame]:
        if not data:
            return []
        packet = av.Packet(data)
        packet.pts = self._pts
        self._pts += len(data)
        return list(self._codec.decode(packet))
