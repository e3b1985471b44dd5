"""A recorded clip (MP4) as the frames eufy clients take, without decoding anything.

Cloud recordings are MP4 files: H.264 samples length-prefixed with the parameter sets in the
``avcC`` record, AAC frames raw with their configuration in the ``esds`` record.  Clients take
Annex B access units with SPS/PPS before key frames, and ADTS-framed AAC, so each sample is
reframed (:class:`~bridge.media.h264.AccessUnits`, :func:`~bridge.media.audio.adts_header`).
Demuxing is blocking work: call :func:`clip_frames` off the event loop.
"""

from __future__ import annotations

import io

import av

from bridge.media.audio import adts_header
from bridge.media.h264 import AccessUnits
from bridge.media.hub import AudioFrame, MediaFrame, VideoFrame, VideoInfo

MAX_FRAMES = 100_000
"""About an hour of video and sound: more is no doorbell clip."""
MAX_ADTS_PAYLOAD = 0x1FFF - 7  # an ADTS frame's length field has 13 bits


class ClipError(ValueError):
    """Not a clip that can be sent: not MP4, no H.264 video, or damaged."""


def clip_frames(data: bytes) -> list[MediaFrame]:
    """Every frame of an MP4 clip, in the file's order (video and audio interleaved).

    The file comes from the network: PyAV meets a damaged one with assorted exceptions
    (FFmpeg errors, but also undecodable metadata text and the like), and every one of them
    means the same to the client, so all become :class:`ClipError`."""
    try:
        return _demux(data)
    except ClipError:
        raise
    except Exception as exc:
        raise ClipError(f"the clip is damaged ({type(exc).__name__}: {exc})") from None


def _demux(data: bytes) -> list[MediaFrame]:
    try:
        container = av.open(io.BytesIO(data), format="mp4")
    except av.FFmpegError as exc:
        raise ClipError(f"not an MP4 clip ({exc})") from None
    with container:
        video = next((s for s in container.streams.video if s.codec_context.name == "h264"), None)
        if video is None:
            raise ClipError("the clip has no H.264 video")
        audio = next((s for s in container.streams.audio if s.codec_context.name == "aac"), None)
        units = AccessUnits(bytes(video.codec_context.extradata or b""))
        rate = video.average_rate or video.guessed_rate
        info = VideoInfo("H264", round(float(rate), 2) if rate else 15.0,
                         video.codec_context.width, video.codec_context.height)
        frames: list[MediaFrame] = []
        streams = [s for s in (video, audio) if s is not None]
        for packet in container.demux(*streams):
            if packet.size == 0:
                continue
            if len(frames) >= MAX_FRAMES:
                raise ClipError(f"the clip holds more than {MAX_FRAMES} frames")
            seconds = float(packet.pts * packet.time_base) if packet.pts is not None \
                else 0.0
            if packet.stream is video:
                converted = units.convert(bytes(packet))
                if converted is not None:
                    frames.append(VideoFrame(converted[0], converted[1], info, seconds))
            else:
                assert audio is not None
                payload = bytes(packet)
                if len(payload) > MAX_ADTS_PAYLOAD:
                    raise ClipError("an audio frame is too large for ADTS")
                header = adts_header(len(payload), audio.codec_context.sample_rate,
                                     len(audio.codec_context.layout.channels))
                frames.append(AudioFrame(header + payload, pts=seconds))
    if not any(isinstance(f, VideoFrame) for f in frames):
        raise ClipError("the clip holds no picture")
    return frames
