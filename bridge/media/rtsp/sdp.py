"""The session description a DESCRIBE answers with (RFC 4566, with the RTP payload formats'
own parameters from RFC 6184 and RFC 3640)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from bridge.media.rtsp.source import AacTrack, H264Track, PcmuTrack, Track


def track_url(base: str, index: int) -> str:
    """The control URL of one track: the stream's URL with ``/trackID=<n>`` added to its path,
    keeping any query (a ``?sessionid=`` must reach every request)."""
    path, mark, query = base.partition("?")
    return f"{path.rstrip('/')}/trackID={index}{mark}{query}"


def _media(track: Track, index: int, base: str) -> list[str]:
    control = f"a=control:{track_url(base, index)}"
    match track:
        case H264Track(sps=sps, pps=pps):
            fmtp = "packetization-mode=1"
            if sps and len(sps) >= 4:
                fmtp += f";profile-level-id={sps[1:4].hex()}"
            if sps and pps:
                sets = ",".join(base64.b64encode(unit).decode() for unit in (sps, pps))
                fmtp += f";sprop-parameter-sets={sets}"
            return ["m=video 0 RTP/AVP 96", "a=rtpmap:96 H264/90000", f"a=fmtp:96 {fmtp}",
                    control]
        case PcmuTrack():
            return ["m=audio 0 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", control]
        case AacTrack(sample_rate=rate, channels=channels):
            fmtp = (f"streamtype=5;profile-level-id=15;mode=AAC-hbr;config={track.config.hex()};"
                    "sizelength=13;indexlength=3;indexdeltalength=3")
            return ["m=audio 0 RTP/AVP 97", f"a=rtpmap:97 MPEG4-GENERIC/{rate}/{channels}",
                    f"a=fmtp:97 {fmtp}", control]
    raise TypeError(f"no SDP for {track!r}")


def describe(tracks: Sequence[Track], base: str, *, session_id: int, name: str) -> bytes:
    """SDP for a live stream at ``base`` (the URL the player asked for).  Control URLs are
    absolute, so that players that resolve relative ones differently all reach the same
    track and keep the URL's query."""
    lines = ["v=0", f"o=- {session_id} 1 IN IP4 0.0.0.0", f"s={name}", "c=IN IP4 0.0.0.0",
             "t=0 0", "a=range:npt=0-", f"a=control:{base}"]
    for index, track in enumerate(tracks):
        lines.extend(_media(track, index, base))
    return ("\r\n".join(lines) + "\r\n").encode()
