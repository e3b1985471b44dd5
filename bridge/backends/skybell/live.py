"""SkyBell live view and talkback: one WebRTC peer connection per doorbell, as the VIEWER.

A SkyBell has no LAN video: the cloud asks the doorbell to stream (``POST /videostream``) and
hands back a Kinesis Video Streams signalling channel where the doorbell waits as MASTER.  The
bridge connects there with aiortc, offers to receive H.264 and to exchange audio, and feeds what
arrives to the media core.  A client's talkback rides on the same peer connection's audio track,
so the stream and the talk share one :class:`LiveSession`: the first of them opens it, the last
one out closes it and tells the cloud (``DELETE /videostream``).

Whatever goes wrong ends in an error or a stopped stream, never a hang: the start is bounded,
a connection that fails or closes ends the session, and so does media that stops for
``stall_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from bridge.backends.skybell.client import SkyBellClient, SkyBellError
from bridge.backends.skybell.kvs import Signalling, SignallingError, viewer_url
from bridge.driver.errors import StationConnectionTimeout
from bridge.media.hub import AudioFrame, Upstream, VideoFrame
from bridge.media.talk import Talk
from bridge.media.webrtc import AudioIn, VideoIn, VoiceTrack
from bridge.tasks import BackgroundTasks

log = structlog.get_logger(component="bridge.skybell")

CONNECT_SECONDS = 10.0
END_SECONDS = 5.0


def ice_servers(entries: Any) -> list[RTCIceServer]:
    """The answer's ICE servers that aiortc can use (anything malformed is left out)."""
    servers = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        urls = entry.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls:
            continue
        usable = [u for u in urls if isinstance(u, str) and u.startswith(("stun:", "turn:",
                                                                            "turns:"))]
        if usable:
            servers.append(RTCIceServer(usable, entry.get("username"),
                                        entry.get("credential")))
    return servers


class LiveSession:
    """One doorbell's peer connection, its media and its voice."""

    def __init__(self, serial: str, stall_seconds: float) -> None:
        self.serial = serial
        self.stall_seconds = stall_seconds
        self.users = 0
        self.voice = VoiceTrack()
        self.upstream: Upstream | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.opening: asyncio.Task[None] | None = None
        self._pc: RTCPeerConnection | None = None
        self._signalling: Signalling | None = None
        self._connected = asyncio.Event()
        self._last_media = time.monotonic()
        self._tasks = BackgroundTasks(f"skybell live {serial}")

    async def open(self, answer: dict[str, Any], http: aiohttp.ClientSession) -> None:
        """Connect as VIEWER to the channel the live-view ``answer`` names; returns once
        the peer connection is up."""
        url = viewer_url(answer)
        pc = self._pc = RTCPeerConnection(RTCConfiguration(
            iceServers=ice_servers(answer.get("ice"))))
        video = pc.addTransceiver("video", direction="recvonly")
        video.setCodecPreferences([c for c in RTCRtpReceiver.getCapabilities("video").codecs
                                   if c.mimeType.lower() == "video/h264"])
        pc.addTransceiver(self.voice, direction="sendrecv")
        pc.on("track", self._track)
        pc.on("connectionstatechange", self._state)
        await pc.setLocalDescription(await pc.createOffer())
        self._signalling = await Signalling.open(http, url)
        await self._signalling.send("SDP_OFFER", {"type": "offer",
                                                  "sdp": pc.localDescription.sdp})
        self._tasks.spawn(self._listen(self._signalling), name=f"signalling {self.serial}")
        waiting = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait([waiting, self.ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if self.ended.done():
            raise StationConnectionTimeout(f"{self.serial}: {self.ended.result()}")
        self._last_media = time.monotonic()
        self._tasks.spawn(self._watch(), name=f"stall watch {self.serial}")

    async def _listen(self, signalling: Signalling) -> None:
        """Apply the doorbell's answer and candidates.  The channel closing later does not
        end the media: the peer connection lives on without it."""
        assert self._pc is not None
        async for kind, payload in signalling.messages():
            try:
                if kind == "SDP_ANSWER" and self._pc.remoteDescription is None:
                    await self._pc.setRemoteDescription(RTCSessionDescription(
                        str(payload["sdp"]), "answer"))
                elif kind == "ICE_CANDIDATE":
                    line = str(payload.get("candidate", "")).removeprefix("candidate:")
                    if line:
                        candidate = candidate_from_sdp(line)
                        candidate.sdpMid = payload.get("sdpMid")
                        candidate.sdpMLineIndex = payload.get("sdpMLineIndex")
                        await self._pc.addIceCandidate(candidate)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("signalling message refused", serial=self.serial, error=str(exc))
        if self._pc.remoteDescription is None:
            self.end("the signalling channel closed before the doorbell answered")

    def _track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._tasks.spawn(self._run(VideoIn(self._video).run(track)),
                              name=f"video {self.serial}")
        else:
            self._tasks.spawn(self._run(AudioIn(self._audio).run(track)),
                              name=f"audio {self.serial}")

    async def _run(self, reader: Awaitable[None]) -> None:
        try:
            await reader
        except Exception as exc:
            log.exception("live media failed", serial=self.serial)
            self.end(f"the media could not be read ({exc})")

    def _video(self, frame: VideoFrame) -> None:
        self._last_media = time.monotonic()
        if self.upstream is not None:
            self.upstream.video(frame)

    def _audio(self, frame: AudioFrame) -> None:
        if self.upstream is not None:
            self.upstream.audio(frame)

    def _state(self) -> None:
        assert self._pc is not None
        state = self._pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self.end("the connection with the doorbell failed" if state == "failed"
                     else "the doorbell closed the connection")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.stall_seconds / 4))
            if time.monotonic() - self._last_media > self.stall_seconds:
                self.end(f"no picture for {self.stall_seconds:g} s")
                return

    def end(self, reason: str) -> None:
        if not self.ended.done():
            log.info("live view ended", serial=self.serial, reason=reason)
            self.ended.set_result(reason)

    async def close(self) -> None:
        """Release everything this session holds (idempotent)."""
        self.end("stopped")
        self.voice.stop()
        if self._signalling is not None:
            with contextlib.suppress(Exception):
                await self._signalling.close()
        if self._pc is not None:
            await self._pc.close()
        await self._tasks.cancel_all()


class LiveViews:
    """The live sessions of one account's doorbells."""

    def __init__(self, client: SkyBellClient, *, stall_seconds: float,
                 map_error: Callable[[SkyBellError], Exception]) -> None:
        self._client = client
        self._stall_seconds = stall_seconds
        self._map_error = map_error
        self._sessions: dict[str, LiveSession] = {}
        self._http: aiohttp.ClientSession | None = None
        self._tasks = BackgroundTasks("skybell live views")

    async def stream(self, device_id: str, serial: str, upstream: Upstream) -> None:
        """Feed ``upstream`` until cancelled, or return when the live view ends."""
        session = await self._acquire(device_id, serial)
        try:
            session.upstream = upstream
            await asyncio.shield(session.ended)
        finally:
            session.upstream = None
            await self._release(device_id, session)

    async def talk(self, device_id: str, serial: str, talk: Talk) -> None:
        """Send ``talk``'s audio on the doorbell's live view until it ends."""
        session = await self._acquire(device_id, serial)
        try:
            talk.started()
            speaking = asyncio.ensure_future(self._speak(session, talk))
            try:
                await asyncio.wait([speaking, session.ended],
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not speaking.done():
                    speaking.cancel()
                    await asyncio.wait([speaking])
            if not speaking.cancelled() and speaking.exception() is None:
                return
            if speaking.cancelled():
                raise StationConnectionTimeout(f"{serial}: {session.ended.result()}")
            speaking.result()
        finally:
            await self._release(device_id, session)

    @staticmethod
    async def _speak(session: LiveSession, talk: Talk) -> None:
        async for adts in talk.audio():
            try:
                samples = await asyncio.to_thread(session.voice.decode, adts)
            except ValueError:
                log.info("undecodable talkback audio skipped", serial=session.serial)
                continue
            session.voice.say(samples)

    async def stop(self) -> None:
        """End every live session (the backend stops)."""
        for device_id, session in list(self._sessions.items()):
            session.users = 0
            await self._close(device_id, session)
        await self._tasks.cancel_all()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _acquire(self, device_id: str, serial: str) -> LiveSession:
        """The doorbell's open session, opening one when there is none: each caller holds a
        claim from the start, so a caller that gives up while it opens lets it go."""
        session = self._sessions.get(device_id)
        if session is None or session.ended.done():
            session = self._sessions[device_id] = LiveSession(serial, self._stall_seconds)
            session.opening = self._tasks.spawn(self._open(device_id, session),
                                                name=f"open live view {serial}", awaited=True)
        session.users += 1
        assert session.opening is not None
        try:
            await asyncio.shield(session.opening)
        except BaseException:
            await self._release(device_id, session)
            raise
        return session

    async def _open(self, device_id: str, session: LiveSession) -> None:
        serial = session.serial
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                answer = await self._client.start_live_view(device_id)
                if self._http is None or self._http.closed:
                    # one signalling socket per view, none kept alive after a refusal
                    self._http = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(force_close=True))
                await session.open(answer, self._http)
        except TimeoutError:
            raise StationConnectionTimeout(
                f"{serial}: the live view did not connect within {CONNECT_SECONDS:g} s") \
                from None
        except SignallingError as exc:
            raise StationConnectionTimeout(f"{serial}: {exc}") from None
        except SkyBellError as exc:
            raise self._map_error(exc) from None

    async def _release(self, device_id: str, session: LiveSession) -> None:
        session.users -= 1
        if session.users <= 0:
            await self._close(device_id, session)

    async def _close(self, device_id: str, session: LiveSession) -> None:
        if self._sessions.get(device_id) is session:
            del self._sessions[device_id]
        opening = session.opening
        if opening is not None and not opening.done():
            opening.cancel()
            await asyncio.wait([opening])
        await session.close()
        await self._end_at_cloud(device_id, session.serial)

    async def _end_at_cloud(self, device_id: str, serial: str) -> None:
        try:
            async with asyncio.timeout(END_SECONDS):
                await self._client.end_live_view(device_id)
        except Exception as exc:  # the doorbell ends an abandoned view by itself
            log.info("the live view could not be ended at the cloud", serial=serial,
                     error=type(exc).__name__)
