"""What the RTSP server plays: a media source per path, and the tracks it describes.

The interface is deliberately small so that anything can stand behind a path: the DoorBird
simulator's generated picture, or the bridge's stream hub re-serving a camera.  A source

- lists its tracks (``tracks``), which the server turns into the SDP of DESCRIBE; and
- is subscribed to with a *sink* callback on the first PLAY of its path; the awaited call
  returns once media can flow (or raises when the source cannot start, which the player sees
  as ``503``), and the returned callable unsubscribes when the last player of the path leaves.

Items reach the sink on the event loop, one H.264 access unit or one audio frame each, and the
sink never blocks: the server decides per player what to skip when a player cannot keep up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                    11025, 8000, 7350)


@dataclass(frozen=True, slots=True)
class H264Track:
    """H.264 video on the 90 kHz clock.  ``sps``/``pps`` (NAL units without start codes) go
    into the SDP when known; players also find them in-band in front of every key frame."""

    sps: bytes | None = None
    pps: bytes | None = None


@dataclass(frozen=True, slots=True)
class PcmuTrack:
    """G.711 µ-law, mono, 8 kHz (RTP payload type 0)."""


@dataclass(frozen=True, slots=True)
class AacTrack:
    """AAC-LC, frames with or without ADTS headers (RTSP carries them bare, RFC 3640)."""

    sample_rate: int = 16000
    channels: int = 1

    @property
    def config(self) -> bytes:
        """The AudioSpecificConfig a player needs to decode bare AAC frames."""
        index = AAC_SAMPLE_RATES.index(self.sample_rate)
        return ((2 << 11) | (index << 7) | (self.channels << 3)).to_bytes(2, "big")


Track = H264Track | PcmuTrack | AacTrack


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One access unit of one track.

    ``data``: H.264 in Annex B (any start code length), µ-law bytes, or AAC frames.
    ``pts``: seconds on a clock shared by the source's tracks.  ``keyframe``: a video access
    unit a decoder can start at.
    """

    track: int
    data: bytes
    pts: float
    keyframe: bool = False


Sink = Callable[[MediaItem], None]
Unsubscribe = Callable[[], None]


class MediaSource(Protocol):
    """A live stream the server can play (see the module documentation)."""

    @property
    def tracks(self) -> Sequence[Track]:
        """The tracks, in the order ``MediaItem.track`` indexes them."""

    def subscribe(self, sink: Sink) -> Awaitable[Unsubscribe]:
        """Start sending items to ``sink``; resolves once media can flow."""
