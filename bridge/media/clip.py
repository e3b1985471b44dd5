"""A recorded clip (an MP4 file) as eufy clients download it: H.264 access units and AAC frames.

Clients take a download the way they take a live stream: each H.264 access unit in Annex B
with the parameter sets in front of every key frame, each AAC-LC frame with its ADTS header.
An MP4 holds neither form (length-prefixed NAL units with the parameter sets in ``avcC``; raw
AAC frames with the configuration in ``esds``), so the packets are rewritten, never decoded.

The file comes from the network: its size is bounded before anything reads it, only the MP4
demuxer may open it (no probing of other formats), what it expands to is bounded too, and the
demuxing runs on a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from fractions import Fraction

import av

from bridge.driver.errors import BridgeError
from bridge.media.audio import adts_header
from bridge.media.h264 import AccessUnits
from bridge.media.hub import AudioFrame, MediaFrame, VideoFrame, VideoInfo

MAX_CLIP_BYTES = 50 * 1024 * 1024
"""The largest clip taken (a doorbell's minute of 1080p is well below)."""

MAX_EXPANSION = 2
"""What a clip's frames may weigh, as a multiple of the file: parameter sets repeated before
every key frame cost little in a real clip and could cost without bound in a crafted one."""


class ClipError(BridgeError):
    """The file is no clip a client could play: not an MP4, no H.264 video, too large."""


@dataclass(frozen=True, slots=True)
class Clip:
    """A clip's frames in file order (video and audio interleaved as the file holds them)."""

    frames: list[MediaFrame]
    info: VideoInfo
    duration: float
    """Seconds from the first picture to the end of the last."""

    @property
    def video_frames(self) -> int:
        return sum(1 for frame in self.frames if isinstance(frame, VideoFrame))

    @property
    def audio_frames(self) -> int:
        return sum(1 for frame in self.frames if isinstance(frame, AudioFrame))


async def demux(data: bytes) -> Clip:
    """The clip in ``data``, demuxed on a worker thread; :class:`ClipError` when it is none."""
    if len(data) > MAX_CLIP_BYTES:
        raise ClipError(f"the clip is larger than {MAX_CLIP_BYTES // (1024 * 1024)} MiB")
    return await asyncio.to_thread(demux_now, data)


def demux_now(data: bytes) -> Clip:
    """:func:`demux` on the calling thread (for callers already on a worker thread)."""
    if len(data) > MAX_CLIP_BYTES:
        raise ClipError(f"the clip is larger than {MAX_CLIP_BYTES // (1024 * 1024)} MiB")
    try:
        container = av.open(io.BytesIO(data), format="mp4")
    except (av.FFmpegError, ValueError, OSError):
        raise ClipError("the clip is not an MP4 file") from None
    try:
        return _read(container, budget=MAX_EXPANSION * max(len(data), 1024 * 1024))
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise ClipError(f"the clip is damaged: {type(exc).__name__}") from None
    finally:
        container.close()


def _read(container: av.container.InputContainer, budget: int) -> Clip:
    video = next((s for s in container.streams.video if s.codec_context.name == "h264"), None)
    if video is None:
        raise ClipError("the clip has no H.264 video")
    audio = next((s for s in container.streams.audio if _adts_ready(s)), None)
    rate = video.average_rate or video.guessed_rate or Fraction(15)
    info = VideoInfo("H264", _number(rate), video.codec_context.width,
                     video.codec_context.height)
    if not info.width or not info.height:
        raise ClipError("the clip's video has no picture size")
    units = AccessUnits(video.codec_context.extradata)
    streams = [video] if audio is None else [video, audio]
    frames: list[MediaFrame] = []
    size, first, last = 0, None, 0.0
    for packet in container.demux(streams):
        if packet.size == 0:
            continue  # the demuxer's end-of-stream marker
        moment = _seconds(packet)
        if packet.stream is video:
            unit = units.convert(bytes(packet))
            if unit is None:
                continue  # a picture before the first parameter sets: unplayable
            data, keyframe = unit
            frames.append(VideoFrame(data, keyframe, info, pts=moment))
            first = moment if first is None else min(first, moment)
            step = float(packet.duration * packet.time_base) if packet.duration else 0.0
            last = max(last, moment + (step or 1 / float(rate)))
        else:
            payload = bytes(packet)
            context = packet.stream.codec_context
            data = adts_header(len(payload), context.sample_rate, context.channels) + payload
            frames.append(AudioFrame(data, pts=moment))
        size += len(data)
        if size > budget:
            raise ClipError("the clip expands beyond what a clip of its size may hold")
    if first is None:
        raise ClipError("the clip holds no playable picture")
    return Clip(frames, info, last - first)


def _adts_ready(stream: av.stream.Stream) -> bool:
    """Whether the audio can travel as ADTS frames: AAC-LC at a rate ADTS can name (other
    sound is left out; the pictures still download)."""
    context = stream.codec_context
    if context.name != "aac" or context.profile != "LC" or not 1 <= context.channels <= 7:
        return False
    try:
        adts_header(0, context.sample_rate, context.channels)
    except ValueError:
        return False
    return True


def _seconds(packet: av.Packet) -> float:
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None or packet.time_base is None:
        return 0.0
    return float(stamp * packet.time_base)


def _number(rate: Fraction) -> float:
    """A frame rate as clients show it: 10, not 10.0, unless it has a fraction."""
    value = float(rate)
    return int(value) if value.is_integer() else round(value, 3)
