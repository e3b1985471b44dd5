"""SkyBell activity clips, downloaded for eufy clients.

An activity's clip reference is its ``video_url``, a path relative to the API base
(``/activity/<id>/video``); the cloud answers it with a short-lived, signed address on its media
host, where the MP4 lies.  A download validates the reference before any request (a client
chooses it, and it must not lead anywhere but to a clip), asks the cloud for the address, and
fetches the file with a size bound.  An address that expired between the cloud's answer and
the fetch (the media host answers 403 or 410) is asked for once more.  The signed address is a
credential: it appears in no log line and no error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import structlog

from bridge.backends.skybell.client import (
    AuthFailed,
    CloudRefused,
    SkyBellClient,
    SkyBellError,
)
from bridge.driver.errors import (
    BridgeError,
    InvalidCommandValue,
    StationConnectionTimeout,
    StationNotConnected,
)
from bridge.media.clip import MAX_CLIP_BYTES, demux
from bridge.media.download import DownloadSink

log = structlog.get_logger(component="backend.skybell")

CLIP_PATH = re.compile(r"^/[A-Za-z0-9_~-][A-Za-z0-9._~/-]*$")
"""What a clip reference looks like: a path under the API base, nothing else."""

FETCH_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10, sock_read=30)
"""Bounds on fetching one clip from the media host."""

EXPIRED = (403, 410)
"""How the media host refuses an address whose signature expired."""

_CHUNK = 64 * 1024


def is_clip_path(path: object) -> bool:
    """Whether ``path`` is a clip reference: a path relative to the API base, without a way
    out of it (no scheme, host, query or ``..``)."""
    return isinstance(path, str) and bool(CLIP_PATH.match(path)) and ".." not in path


async def download_clip(client: SkyBellClient, path: str, sink: DownloadSink) -> None:
    """Fetch the clip behind ``path`` and feed its frames to ``sink``; a
    :class:`BridgeError` when there is no such clip or it cannot be fetched now."""
    if not is_clip_path(path):
        raise InvalidCommandValue("the path is no SkyBell clip reference")
    data = await fetch_clip(client, path, found=sink.started)
    clip = await demux(data)
    log.info("clip downloading", path=path, seconds=round(clip.duration, 2),
             frames=len(clip.frames))
    for frame in clip.frames:
        await sink.send(frame)


async def fetch_clip(client: SkyBellClient, path: str,
                     found: Callable[[], None] = lambda: None) -> bytes:
    """The MP4 behind a (validated) clip reference; ``found`` is called once the media host
    has begun to send it."""
    async with aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as http:
        for attempt in range(2):
            url = await _address(client, path)
            status, data = await _get(http, url, found)
            if status == 200:
                return data
            if status in EXPIRED and attempt == 0:
                log.info("clip address expired, asking for a fresh one", path=path)
                continue
            raise _refusal(status, path)
    raise AssertionError("unreachable")


async def _address(client: SkyBellClient, path: str) -> str:
    try:
        url = await client.clip_url(path)
    except CloudRefused as exc:
        if exc.status == 404:
            raise InvalidCommandValue(
                "no clip at that path: the activity is gone or its clip is not uploaded yet"
            ) from None
        if exc.status >= 500:
            raise StationConnectionTimeout(f"the cloud could not give the clip: {exc.status}") \
                from None
        raise InvalidCommandValue(f"the cloud refuses the clip: {exc.message}") from None
    except AuthFailed as exc:
        raise StationNotConnected(str(exc)) from None
    except SkyBellError as exc:  # offline, unavailable
        raise StationConnectionTimeout(str(exc)) from None
    if urlsplit(url).scheme not in ("https", "http"):
        raise BridgeError("the cloud's clip address is no web address")
    return url


async def _get(http: aiohttp.ClientSession, url: str,
               found: Callable[[], None]) -> tuple[int, bytes]:
    """The media host's status and, for a 200, the whole file (at most
    :data:`MAX_CLIP_BYTES`).  Errors never carry the address."""
    try:
        async with http.get(url) as response:
            if response.status != 200:
                return response.status, b""
            if (response.content_length or 0) > MAX_CLIP_BYTES:
                raise BridgeError("the clip is larger than a clip may be")
            found()
            data = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                data += chunk
                if len(data) > MAX_CLIP_BYTES:
                    raise BridgeError("the clip is larger than a clip may be")
            return 200, bytes(data)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StationConnectionTimeout(
            f"the media host did not deliver the clip: {type(exc).__name__}") from None


def _refusal(status: int, path: str) -> BridgeError:
    log.warning("the media host refuses the clip", path=path, status=status)
    if status == 404:
        return InvalidCommandValue("the clip is gone from the media host")
    if status in EXPIRED:
        return BridgeError("the media host refuses even a fresh clip address")
    if status >= 500:
        return StationConnectionTimeout(f"the media host failed: {status}")
    return BridgeError(f"the media host refuses the clip: {status}")
