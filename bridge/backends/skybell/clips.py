"""SkyBell recordings: an activity's clip, downloaded for a eufy client.

An activity's ``video_url`` is a path relative to the API base (``/activity/<id>/video``) that
answers a short-lived download address of the MP4; the MP4 itself lives on another host, which
gets no credentials.  An address that has lapsed by the time it is used is asked for afresh,
once.  The clip is size-bounded before it is read, and demuxed off the event loop.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from bridge.backends.skybell.client import SkyBellClient
from bridge.driver.errors import InvalidCommandValue
from bridge.media.clip import ClipError, clip_frames
from bridge.media.download import Download
from bridge.media.hub import VideoFrame

CLIP_PATH = re.compile(r"^/[A-Za-z0-9_~-][A-Za-z0-9._~/-]*$")
MAX_CLIP_BYTES = 50 * 1024 * 1024


def clip_path(row: dict[str, Any]) -> str:
    """An activity's clip reference: its ``video_url``, a path relative to the API base
    (``/activity/<id>/video``), or "" while the clip is not ready or the path is anything else
    (a full URL, another host, a way out of the API)."""
    path = row.get("video_url")
    if not isinstance(path, str) or not CLIP_PATH.match(path) or ".." in path:
        return ""
    return path


async def download_clip(client: SkyBellClient, path: str, download: Download) -> None:
    """Feed ``download`` the clip at ``path``.  SkyBellError for the cloud's refusals (the
    backend maps them); InvalidCommandValue for a path that is no clip reference."""
    if clip_path({"video_url": path}) != path or not path:
        raise InvalidCommandValue("the path is not a SkyBell clip reference")
    data = None
    for _ in range(2):
        url = await client.clip_url(path)
        data = await client.fetch_clip(url, MAX_CLIP_BYTES)
        if data is not None:
            break
    if data is None:
        raise InvalidCommandValue("the clip's download address lapsed twice")
    try:
        frames = await asyncio.to_thread(clip_frames, data)
    except ClipError as exc:
        raise InvalidCommandValue(f"the clip cannot be sent: {exc}") from None
    download.started()
    for frame in frames:
        if isinstance(frame, VideoFrame):
            await download.video(frame)
        else:
            await download.audio(frame)
