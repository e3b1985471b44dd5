"""A small RTSP server: serves live H.264 with µ-law or AAC audio to any RTSP player.

``protocol`` is the sans-I/O request handling, ``rtp`` the packetisers, ``sdp`` the session
description, ``source`` the interface a stream offers to be served, ``auth`` ready-made
access checks, and ``server`` the asyncio adapter that ties them to sockets.  Both the DoorBird
simulator (streaming as a real station does) and the bridge (re-serving its cameras) use it.
"""

from bridge.media.rtsp.protocol import Refused
from bridge.media.rtsp.server import PlayerInfo, RtspServer
from bridge.media.rtsp.source import (
    AacTrack,
    H264Track,
    MediaItem,
    MediaSource,
    PcmuTrack,
    Sink,
    Track,
    Unsubscribe,
)

__all__ = ["AacTrack", "H264Track", "MediaItem", "MediaSource", "PcmuTrack", "PlayerInfo",
           "Refused", "RtspServer", "Sink", "Track", "Unsubscribe"]
