"""A DoorBird's live view for eufy clients: its video as H.264 access units, its microphone as
AAC, brought in once per stream however many clients watch (the stream hub shares it).

Video comes from the station's RTSP stream, whose H.264 passes through untouched; where RTSP is
refused or absent, from ``video.cgi`` MJPEG encoded to H.264 here.  Sound comes from
``audio-receive.cgi`` (µ-law) and is transcoded to AAC.  Every request carries a session id
taken for this stream alone and invalidated when it ends: a session id opens the door as well
as the password does, and the password never travels in a URL.

Demuxing, decoding and encoding block, so they run on worker threads; the event loop only
moves bytes and hands frames to the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import av
import structlog

from bridge.backends.doorbird.client import DoorBirdClient, DoorBirdError, Refused, Unreachable
from bridge.backends.doorbird.transcode import MjpegToH264, MulawToAac
from bridge.media.h264 import AccessUnits
from bridge.media.hub import AudioFrame, Upstream, VideoFrame, VideoInfo
from bridge.settings import DoorBirdSettings

log = structlog.get_logger(component="backend.doorbird")

RTSP_FPS = 12.0
"""The seed's H.264 rate over RTSP, for a stream that does not say its own."""
MJPEG_FPS = 8.0
"""``video.cgi`` sends up to 8 pictures a second."""
DEFAULT_PATH = "/mpeg/media.amp"
HD_PATH = "/mpeg/720p/media.amp"
AUDIO_CHUNK = 800
"""µ-law bytes transcoded at a time: 100 ms, few thread hand-offs and little delay."""


class RtspVideo:
    """The station's H.264 over RTSP, demuxed on a thread of its own.

    ``opened`` resolves with the stream's :class:`VideoInfo` (or the reason it cannot open);
    ``ended`` once the thread is done, with the reason when the stream broke.  :meth:`stop`
    ends the thread within one frame, or within ``read_timeout`` when the station is silent.
    """

    def __init__(self, url: str, deliver: Callable[[VideoFrame], None], *,
                 open_timeout: float = 5.0, read_timeout: float = 5.0) -> None:
        self._url = url
        self._deliver = deliver
        self._timeouts = (open_timeout, read_timeout)
        self._loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[VideoInfo] = self._loop.create_future()
        self.ended: asyncio.Future[None] = self._loop.create_future()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="doorbird rtsp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _post(self, call: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(call, *args)

    def _settle(self, future: asyncio.Future[Any], result: Any = None,
                error: BaseException | None = None) -> None:
        def settle() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
                future.exception()  # a reason nobody asks for must not be reported as lost
        self._post(settle)

    def _run(self) -> None:
        try:
            # only the video is set up: the sound comes from audio-receive.cgi
            container = av.open(self._url, timeout=self._timeouts,
                                options={"rtsp_transport": "tcp",
                                         "allowed_media_types": "video"})
        except Exception as exc:  # refused, absent, unauthorised: the caller falls back
            self._settle(self.opened, error=Unreachable(f"RTSP: {exc}"))
            self._settle(self.ended)
            return
        error: BaseException | None = None
        try:
            self._demux(container)
            if not self._stop.is_set():
                error = Unreachable("the station ended its RTSP stream")
        except Exception as exc:
            error = Unreachable(f"RTSP: {exc}")
        finally:
            container.close()
            self._settle(self.opened, error=error or Unreachable("RTSP: no video"))
            self._settle(self.ended, error=error)

    def _demux(self, container: Any) -> None:
        if not container.streams.video:
            raise Refused("the RTSP stream has no video")
        stream = container.streams.video[0]
        context = stream.codec_context
        if context.name != "h264":
            raise Refused(f"the RTSP stream carries {context.name}, not H.264")
        units = AccessUnits(context.extradata)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate and 1 <= rate <= 60 else RTSP_FPS
        info = VideoInfo("H264", fps, context.width, context.height)
        self._settle(self.opened, info)
        for packet in container.demux(stream):
            if self._stop.is_set():
                return
            if packet.size == 0:
                continue
            unit = units.convert(bytes(packet))
            if unit is None:
                continue
            pts = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            self._post(self._deliver, VideoFrame(unit[0], unit[1], info, pts))


def video_paths(configured: str | None, model: str, firmware: str) -> list[str]:
    """RTSP paths to try, best first: the configured one, else 720p where the model has it
    (D21x from firmware 129, per the LAN API), then the path every station has."""
    if configured:
        return [configured]
    name = model.upper().removeprefix("DOORBIRD").strip()
    digits = "".join(c for c in firmware if c.isdigit())
    if name.startswith("D21") and digits and int(digits) >= 129:
        return [HD_PATH, DEFAULT_PATH]
    return [DEFAULT_PATH]


async def jpeg_parts(body: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The pictures of a ``multipart/x-mixed-replace`` body, each part sized by its
    ``Content-Length`` as the station sends it."""
    while True:
        line = await body.readline()
        if not line:
            return
        if not line.startswith(b"--"):
            continue  # the line break after a picture, or preamble
        length = None
        while (header := await body.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise Refused("video.cgi sent a picture without Content-Length")
        try:
            yield await body.readexactly(length)
        except asyncio.IncompleteReadError:
            return


class LiveView:
    """Live view and its sound of one station (see the module documentation)."""

    def __init__(self, client: DoorBirdClient, settings: DoorBirdSettings, *,
                 read_timeout: float = 5.0) -> None:
        self.client = client
        self.settings = settings
        self.read_timeout = read_timeout
        self.paths = video_paths(settings.video_path, "", "")

    def found(self, model: str, firmware: str) -> None:
        """The station's model and firmware are known: they say which paths it has."""
        self.paths = video_paths(self.settings.video_path, model, firmware)

    async def stream(self, upstream: Upstream) -> None:
        """Feed ``upstream`` until cancelled or until the station ends the stream; raises the
        station's refusal (:class:`DoorBirdError`) before the first frame."""
        session, _ = await self.client.session()
        got_video = asyncio.Event()

        def deliver(frame: VideoFrame) -> None:
            got_video.set()
            upstream.video(frame)

        video = asyncio.ensure_future(self._video(session, deliver))
        first = asyncio.ensure_future(got_video.wait())
        audio: asyncio.Future[None] | None = None
        try:
            await asyncio.wait([video, first], return_when=asyncio.FIRST_COMPLETED)
            if not video.done():  # sound only once there is a picture to go with it
                audio = asyncio.ensure_future(self._audio(session, upstream))
            await video
        finally:
            for task in (first, video, audio):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.wait([t for t in (first, video, audio) if t is not None])
            with contextlib.suppress(DoorBirdError):
                await self.client.invalidate(session)

    async def _video(self, session: str, deliver: Callable[[VideoFrame], None]) -> None:
        port = self.settings.rtsp_port
        for path in self.paths if port is not None else ():
            url = f"rtsp://{self.client.host}:{port}{path}"
            try:
                await self._rtsp(f"{url}?sessionid={session}", deliver)
                return
            except _RtspUnavailable as exc:
                log.info("DoorBird RTSP unavailable", url=url, reason=str(exc.__cause__))
        if port is not None:
            log.info("DoorBird live view from video.cgi (MJPEG encoded to H.264)")
        await self._mjpeg(session, deliver)

    async def _rtsp(self, url: str, deliver: Callable[[VideoFrame], None]) -> None:
        reader = RtspVideo(url, deliver, read_timeout=self.read_timeout)
        reader.start()
        try:
            try:
                await reader.opened
            except DoorBirdError as exc:
                raise _RtspUnavailable() from exc
            await reader.ended
        finally:
            reader.stop()
            await asyncio.wait([reader.ended])  # the thread ends within a frame or a timeout

    async def _mjpeg(self, session: str, deliver: Callable[[VideoFrame], None]) -> None:
        encoder = MjpegToH264(MJPEG_FPS)
        began = time.monotonic()
        async with self.client.live("video.cgi", session,
                                    read_timeout=self.read_timeout) as body:
            async for jpeg in jpeg_parts(body):
                try:
                    units = await asyncio.to_thread(encoder.encode, jpeg,
                                                    time.monotonic() - began)
                except ValueError as exc:
                    log.debug("DoorBird picture skipped", reason=str(exc))
                    continue
                info = VideoInfo("H264", MJPEG_FPS, encoder.width, encoder.height)
                for data, keyframe in units:
                    deliver(VideoFrame(data, keyframe, info, time.monotonic() - began))
        raise Unreachable("the station ended its video.cgi stream")

    async def _audio(self, session: str, upstream: Upstream) -> None:
        """The station's microphone; a stream without sound goes on (logged)."""
        converter = MulawToAac()
        try:
            async with self.client.live("audio-receive.cgi", session,
                                        read_timeout=self.read_timeout) as body:
                while True:
                    try:
                        mulaw = await body.readexactly(AUDIO_CHUNK)
                    except asyncio.IncompleteReadError as exc:
                        mulaw = exc.partial
                    if not mulaw:
                        break
                    for adts in await asyncio.to_thread(converter.convert, mulaw):
                        upstream.audio(AudioFrame(adts))
            log.warning("DoorBird sound ended", reason="the station ended audio-receive.cgi")
        except DoorBirdError as exc:
            log.warning("DoorBird live view without sound", reason=str(exc))


class _RtspUnavailable(Exception):
    """RTSP could not open (its cause says why): the live view falls back to MJPEG."""
