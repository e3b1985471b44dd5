"""Every camera re-served over RTSP by the bridge, from the same shared stream eufy clients get.

A camera's stream is held once, in the stream hub (:mod:`bridge.media.hub`); this module makes
it a :class:`~bridge.media.rtsp.MediaSource`, so that an RTSP player is just another
subscriber: the first one (RTSP player or eufy client) starts the device's upstream, the last
one leaving stops it, and a DoorBird spends one of its few stream slots however many watch.
H.264 passes as it arrives (no re-encoding) and AAC goes out bare from the hub's ADTS frames.

The URL handed to clients points at the bridge, never at the vendor, so it carries no vendor
credential or session id; when the bridge has a client token, the URL carries that token as
the Basic password (the RTSP server requires it), and the token never reaches a log line.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Sequence
from urllib.parse import quote

import structlog

from bridge.driver import Device, Driver
from bridge.driver import properties as p
from bridge.driver.errors import NotSupported, StationNotConnected
from bridge.media.audio import AAC_RATE
from bridge.media.hub import MediaFrame, VideoFrame
from bridge.media.rtsp import (
    AacTrack,
    H264Track,
    MediaItem,
    RtspServer,
    Sink,
    Track,
    Unsubscribe,
)
from bridge.media.rtsp.auth import Check
from bridge.media.rtsp.protocol import Request
from bridge.media.rtsp.rtp import split_adts, split_annexb
from bridge.media.rtsp.source import AAC_SAMPLE_RATES

log = structlog.get_logger(component="bridge.media.relay")

RTSP_COMMANDS = ("start_rtsp_livestream", "stop_rtsp_livestream", "is_rtsp_livestreaming")
"""What a camera answers once the bridge serves it over RTSP."""

_SAMPLES_PER_AAC_FRAME = 1024


def token_check(token: str) -> Check:
    """Basic credentials with the token as password (any user name), or ``?token=``."""
    expected = token.encode()

    def check(request: Request) -> bool:
        given = request.basic_credentials()
        if given is not None and hmac.compare_digest(given[1].encode(), expected):
            return True
        values = request.query.get("token")
        return bool(values) and hmac.compare_digest(values[0].encode(), expected)

    return check


def primary_address() -> str:
    """The address this machine reaches its network from (no packet is sent): what players on
    the LAN can reach when the server listens on every address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def advertised(host: str, configured: str | None) -> str:
    """The host put into URLs: the setting, else the bound address unless it is a wildcard."""
    if configured:
        return configured
    if host in ("0.0.0.0", "::", ""):
        return primary_address()
    return host


def _adts_format(frame: bytes) -> tuple[int, int] | None:
    """(sample rate, channels) from an ADTS header."""
    if len(frame) < 7 or frame[0] != 0xFF or frame[1] & 0xF0 != 0xF0:
        return None
    index = (frame[2] >> 2) & 0x0F
    channels = ((frame[2] & 0x01) << 2) | (frame[3] >> 6)
    if index >= len(AAC_SAMPLE_RATES) or not channels:
        return None
    return AAC_SAMPLE_RATES[index], channels


class _Feed:
    """One RTSP broadcast as a hub subscriber: hub frames in, media items to the server.

    Audio reaches the hub without a usable clock (a backend converts it in chunks), so its
    timestamps are counted here in samples, which keeps them even for the player, from the
    video's time when sound first comes, which keeps the two together."""

    def __init__(self, camera: _Camera, sink: Sink, audio: AacTrack | None) -> None:
        self.camera = camera
        self.sink = sink
        self.audio = audio
        self.video_pts = 0.0
        self.samples: int | None = None

    def media(self, frame: MediaFrame) -> None:
        if isinstance(frame, VideoFrame):
            self.camera.learn_video(frame)
            self.video_pts = frame.pts
            self.sink(MediaItem(0, frame.data, frame.pts, frame.keyframe))
            return
        self.camera.learn_audio(frame.data)
        if self.audio is None:
            return
        if self.samples is None:
            self.samples = round(self.video_pts * self.audio.sample_rate)
        self.sink(MediaItem(1, frame.data, self.samples / self.audio.sample_rate))
        self.samples += _SAMPLES_PER_AAC_FRAME * max(1, len(split_adts(frame.data)))

    def ended(self, reason: str | None) -> None:
        """The device's stream stopped for everyone: its players are let go (they may come
        back and start it anew)."""
        self.camera.ended()


class _Camera:
    """One camera as an RTSP source (what :class:`~bridge.media.rtsp.MediaSource` asks)."""

    def __init__(self, service: RtspRelay, device: Device) -> None:
        self.service = service
        self.device = device
        self.sps: bytes | None = None
        self.pps: bytes | None = None
        self.audio_format: tuple[int, int] = (AAC_RATE, 1)

    @property
    def path(self) -> str:
        return f"/{self.device.serial}"

    @property
    def tracks(self) -> Sequence[Track]:
        video = H264Track(self.sps, self.pps)
        if not self.has_audio:
            return (video,)
        rate, channels = self.audio_format
        return (video, AacTrack(sample_rate=rate, channels=channels))

    @property
    def has_audio(self) -> bool:
        """A camera that talks back has a microphone too: its stream carries sound."""
        return "start_talkback" in self.device.commands

    async def subscribe(self, sink: Sink) -> Unsubscribe:
        tracks = self.tracks
        audio = tracks[1] if len(tracks) > 1 else None
        assert audio is None or isinstance(audio, AacTrack)
        feed = _Feed(self, sink, audio)
        await self.service.driver.watch(self.device, feed)
        serial = self.device.serial
        return lambda: self.service.driver.streams.leave(serial, feed) and None

    def learn_video(self, frame: VideoFrame) -> None:
        """Parameter sets for DESCRIBEs before the next PLAY (players also get them in-band)."""
        if frame.keyframe and self.sps is None:
            for unit in split_annexb(frame.data):
                kind = unit[0] & 0x1F
                if kind == 7:
                    self.sps = unit
                elif kind == 8:
                    self.pps = unit

    def learn_audio(self, data: bytes) -> None:
        found = _adts_format(data)
        if found is not None:
            self.audio_format = found

    def ended(self) -> None:
        self.service.server_end(self.path)


class RtspRelay:
    """The bridge's RTSP server: ``rtsp://HOST:PORT/<serial>`` for every camera."""

    def __init__(self, driver: Driver, *, host: str, port: int, advertised_host: str | None,
                 token: str | None) -> None:
        self.driver = driver
        self._token = token
        self._cameras: dict[str, _Camera] = {}
        self.requested: set[str] = set()
        """Cameras a client started with ``start_rtsp_livestream`` (and did not stop)."""
        self.server = RtspServer(
            self._resolve, authorize=token_check(token) if token else None, host=host,
            port=port, start_timeout=driver.backend_timeout + 1.0, name="eufy-bridge")
        self.host = advertised(host, advertised_host)

    def __repr__(self) -> str:  # the token stays out of every repr
        return f"RtspRelay(port={self.server.port}, token={'set' if self._token else 'none'})"

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()

    def url(self, serial: str) -> str:
        """The URL a client plays the camera at, with the token it needs when one is set."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = f"eufy:{quote(self._token, safe='')}@" if self._token else ""
        return f"rtsp://{auth}{host}:{self.server.port}/{quote(serial, safe='')}"

    def decorate(self, device: Device) -> None:
        """A camera gets ``rtspStream``, the bridge's URL (unless its backend hands out the
        device's own URL: a user's choice) and the RTSP commands."""
        if "start_livestream" not in device.commands:
            return
        if not (device.properties.get(p.RTSP_STREAM.name) and device.properties.get(
                p.RTSP_STREAM_URL.name)):
            device.define(p.RTSP_STREAM, True)
            device.define(p.RTSP_STREAM_URL, self.url(device.serial))
        device.commands = device.commands + tuple(
            c for c in RTSP_COMMANDS if c not in device.commands)

    def playing(self, serial: str) -> bool:
        """Whether RTSP players watch the camera, or a client started its RTSP stream."""
        return serial in self.requested or self.server.streaming(f"/{serial}")

    def check(self, device: Device) -> None:
        """Raise unless the camera can be played over RTSP now."""
        if "start_livestream" not in device.commands or not (
                device.properties.get(p.RTSP_STREAM.name)):
            raise NotSupported(f"{device.serial} is not served over RTSP")
        if not self.driver.connected:
            raise StationNotConnected("the driver is disconnected")

    def server_end(self, path: str) -> None:
        self.server.end(path)

    def _resolve(self, path: str) -> _Camera | None:
        serial = path.strip("/")
        device = self.driver.devices.get(serial)
        if device is None or "start_livestream" not in device.commands:
            return None
        camera = self._cameras.get(serial)
        if camera is None or camera.device is not device:
            camera = self._cameras[serial] = _Camera(self, device)
        return camera

