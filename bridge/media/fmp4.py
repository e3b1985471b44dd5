"""Fragmented MP4 of a live stream, muxed with PyAV and never re-encoded.

Browsers play fragmented MP4 from a plain ``<video src>``, and so do VLC, ffplay and PyAV: an
init segment (``ftyp`` + ``moov``, written before any media, ``empty_moov``) and then one
fragment (``moof`` + ``mdat``) per key frame (``frag_keyframe``). Every fragment therefore starts
with a key frame, which is what lets many viewers share one muxer: a late joiner gets the init
segment and then the next fragment, and a viewer that falls behind simply skips whole
fragments. Everything here blocks (PyAV); callers run it off the event loop.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from bridge.media.audio import split_adts
from bridge.media.hub import AudioFrame, VideoFrame

VIDEO_RATE = 90000
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
               8000, 7350)
OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1",
           "max_interleave_delta": "500000"}
"""``flush_packets`` hands every fragment out as soon as it is complete; a short interleave
delay keeps video flowing when audio pauses (it would otherwise wait up to 10 s for it)."""


def adts_config(frame: bytes) -> tuple[int, int]:
    """Sample rate and channel count of an ADTS frame's header."""
    rate = _ADTS_RATES[(frame[2] >> 2) & 0x0F]
    channels = ((frame[2] & 1) << 2) | (frame[3] >> 6)
    return rate, channels or 1


class _Boxes:
    """Collects what the muxer writes and hands out complete top-level boxes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> list[tuple[bytes, bytes]]:
        """Complete boxes as (type, whole box), in order."""
        boxes, pos, buffer = [], 0, self._buffer
        while len(buffer) - pos >= 8:
            size = int.from_bytes(buffer[pos:pos + 4], "big")
            if size == 1 and len(buffer) - pos >= 16:
                size = int.from_bytes(buffer[pos + 8:pos + 16], "big")
            if size < 8 or len(buffer) - pos < size:
                break
            boxes.append((bytes(buffer[pos + 4:pos + 8]), bytes(buffer[pos:pos + size])))
            pos += size
        del buffer[:pos]
        return boxes


class Fmp4Muxer:
    """One stream's muxer: H.264 from a key frame on, and AAC when the stream has audio."""

    def __init__(self, first: VideoFrame, audio: AudioFrame | None) -> None:
        self._out = _Boxes()
        self._container = av.open(self._out, "w", format="mp4", options=OPTIONS)
        # The raw H.264 demuxer reads the key frame's SPS and PPS into the stream's extradata
        # and its size; the muxer copies them into the init segment.
        with av.open(io.BytesIO(first.data), format="h264") as template:
            self._video = self._container.add_stream_from_template(template.streams.video[0])
        self._video.time_base = Fraction(1, VIDEO_RATE)
        self._audio = None
        self._audio_rate = 0
        if audio is not None:
            self._audio_rate, channels = adts_config(audio.data)
            # An AAC stream's decoder configuration is what an encoder opened with the same
            # rate and channels writes (AAC-LC); only the muxer uses that encoder.
            self._audio = self._container.add_stream(
                "aac", rate=self._audio_rate, layout="mono" if channels == 1 else "stereo")
        self._origin = first.pts
        self._video_time = 0.0  # seconds since the first key frame
        self._audio_time: float | None = None
        self._last = {"video": -1, "audio": -1}
        self._container.start_encoding()
        self.init = b"".join(box for _, box in self._out.take())
        """The init segment every viewer starts with."""
        self._moof = b""

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def video(self, frame: VideoFrame) -> list[bytes]:
        """Mux one access unit; the fragments it completed."""
        self._video_time = frame.pts - self._origin
        self._mux(self._video, "video", frame.data, self._video_time, VIDEO_RATE,
                  frame.keyframe)
        return self._fragments()

    def audio(self, frame: AudioFrame) -> list[bytes]:
        """Mux one ADTS frame (or several); the fragments it completed. Ignored without an
        audio track.

        Backends do not all stamp their audio, so its time is counted in samples (1024 per
        AAC frame) from the video's time when it began; audio more than a second behind the
        video (frames were skipped) starts again from the video's time."""
        if self._audio is None:
            return []
        if self._audio_time is None or self._audio_time < self._video_time - 1.0:
            self._audio_time = self._video_time
        for adts in split_adts(frame.data):
            self._mux(self._audio, "audio", adts[7:], self._audio_time, self._audio_rate, True)
            self._audio_time += 1024 / self._audio_rate
        return self._fragments()

    def close(self) -> list[bytes]:
        """End the stream: the last fragment."""
        self._container.close()
        return self._fragments()

    def _mux(self, stream: av.stream.Stream, kind: str, data: bytes, seconds: float, rate: int,
             keyframe: bool) -> None:
        # Live timestamps may repeat or step back (a camera's clock, a reconnect); the
        # muxer requires them to rise.
        ticks = max(round(seconds * rate), self._last[kind] + 1)
        self._last[kind] = ticks
        packet = av.Packet(data)
        packet.stream = stream
        packet.time_base = Fraction(1, rate)
        packet.pts = packet.dts = ticks
        packet.is_keyframe = keyframe
        self._container.mux(packet)

    def _fragments(self) -> list[bytes]:
        fragments = []
        for kind, box in self._out.take():
            if kind == b"moof":
                self._moof = box
            elif kind == b"mdat" and self._moof:
                fragments.append(self._moof + box)
                self._moof = b""
        return fragments
