"""A backend double: one doorbell (a station and a device sharing a serial) and one door relay.

It implements the backend interface the way a vendor backend does (registering entities,
confirming writes, reporting events) so that the server and driver can be specified without a
vendor in the loop.  It records what it was asked to do, for the tests to check.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from bridge.driver import Backend, Device, Driver, Station
from bridge.driver import properties as p
from bridge.driver.errors import InvalidCommandValue, InvalidPropertyValue, StationNotConnected
from bridge.media.clip import demux
from bridge.media.download import DownloadSink
from bridge.media.hub import Upstream, VideoFrame, VideoInfo
from bridge.media.talk import Talk
from bridge.simulators.skybell.clips import encode_clip
from tests.media import FPS, HEIGHT, WIDTH, h264_access_units

DOORBELL = "TESTBELL0001"
LOCK = "TESTBELL0001-R1"
JPEG = bytes([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]) + b"JFIF" + bytes([0xFF, 0xD9])
RECORDING = "/recordings/front-door/1.mp4"
"""The one recording the doorbell holds (its ``cloud_path``)."""
CLIP_SECONDS, CLIP_FPS = 3.0, 10


@cache
def clip_mp4() -> bytes:
    """The recording: a real MP4 of H.264 pictures and an AAC tone, ``CLIP_SECONDS`` long."""
    return encode_clip(CLIP_SECONDS, CLIP_FPS, start=0.0)


class DoorbellBackend(Backend):
    vendor = "test"

    def __init__(self, *, fail_start: str | None = None) -> None:
        self.driver: Driver | None = None
        self.writes: list[tuple[str, str, Any]] = []
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self.refreshes = 0
        self.fail_start = fail_start
        self.stopped = False
        self.history: list[dict[str, Any]] = []
        self.streams_started = 0
        self.streams_ended = 0
        self.stream_fails: int | None = None
        self.stream_start_error: Exception | None = None
        self.heard: list[bytes] = []
        self.talks_started = 0
        self.talks_ended = 0
        self.downloads_started = 0
        self.downloads_ended = 0
        self.download_pace = 0.0
        """Seconds between the frames of a download (0: as fast as the client takes them)."""

    async def start(self, driver: Driver) -> None:
        if self.fail_start:
            raise StationNotConnected(self.fail_start)
        self.driver = driver
        station = Station(DOORBELL, backend=self, commands=("reboot",))
        p.define_station(station, name="Front door", model="Test Bell", type_=5,
                         hardware="1.0", software="2.3.4", mac_address="00:11:22:33:44:55",
                         lan_ip_address="192.0.2.10")
        driver.add_station(station)

        bell = Device(DOORBELL, backend=self, station_serial=DOORBELL,
                      commands=("start_livestream", "stop_livestream", "reset_alarm",
                                "start_talkback", "stop_talkback", "talkback_audio_data",
                                "start_download", "cancel_download"))
        p.define_device(bell, name="Front door", model="Test Bell", type_=5, hardware="1.0",
                        software="2.3.4")
        bell.define(p.RINGING, False)
        bell.define(p.MOTION_DETECTED, False)
        bell.define(p.PERSON_DETECTED, False)
        bell.define(p.PERSON_NAME, "")
        bell.define(p.LIGHT, False)
        bell.define(p.STATUS_LED, True)
        bell.define(p.SPEAKER_VOLUME.with_(min=0, max=100, key="volume"), 50)
        bell.define(p.VIDEO_STREAMING_QUALITY.with_(states={0: "480p", 1: "720p", 2: "1080p"}), 1)
        bell.define(p.WIFI_RSSI.with_(min=-100, max=0), -51)
        bell.define(p.PICTURE, {"data": JPEG, "type": {"ext": "jpg", "mime": "image/jpeg"}})
        driver.add_device(bell)

        lock = Device(LOCK, backend=self, station_serial=DOORBELL, commands=("unlock", "open"))
        p.define_device(lock, name="Front door relay 1", model="Test Relay", type_=51,
                        hardware="1.0", software="2.3.4")
        lock.define(p.LOCKED, True)
        driver.add_device(lock)

    async def stop(self) -> None:
        self.stopped = True

    @property
    def push_connected(self) -> bool:
        return True

    async def refresh(self) -> None:
        self.refreshes += 1

    async def set_property(self, entity: Any, name: str, value: Any) -> None:
        if name == "speakerVolume" and value == 13:
            raise InvalidPropertyValue("the device refuses 13")
        self.writes.append((entity.serial, name, value))

    async def run_command(self, entity: Any, command: str, params: dict[str, Any]) -> Any:
        self.commands.append((entity.serial, command, params))
        if command in ("unlock", "open"):
            assert self.driver is not None
            self.driver.update_property(entity, "locked", False)
        if command == "reset_alarm":
            await asyncio.sleep(3600)  # a device that never answers
        return None

    async def talk(self, device: Any, talk: Talk) -> None:
        """Takes audio at once and keeps every ADTS frame it hears."""
        self.talks_started += 1
        talk.started()
        try:
            async for frame in talk.audio():
                self.heard.append(frame)
        finally:
            self.talks_ended += 1

    async def stream(self, device: Any, upstream: Upstream) -> None:
        """Real H.264 at the test frame rate, looping; ``stream_fails`` ends it with an error
        after that many frames, ``stream_start_error`` refuses to start."""
        self.streams_started += 1
        try:
            if self.stream_start_error is not None:
                raise self.stream_start_error
            info = VideoInfo("H264", FPS, WIDTH, HEIGHT)
            units = h264_access_units()
            sent = 0
            while True:
                for data, keyframe in units:
                    if self.stream_fails is not None and sent >= self.stream_fails:
                        raise StationNotConnected("the doorbell went away")
                    upstream.video(VideoFrame(data, keyframe, info, pts=sent / FPS))
                    sent += 1
                    await asyncio.sleep(1 / FPS)
        finally:
            self.streams_ended += 1

    async def download(self, device: Any, path: str, cipher_id: int,
                       sink: DownloadSink) -> None:
        """Sends :data:`RECORDING` (any other path is no recording)."""
        self.downloads_started += 1
        try:
            if path != RECORDING:
                raise InvalidCommandValue(f"no recording at {path}")
            clip = await demux(await asyncio.to_thread(clip_mp4))
            sink.started()
            for frame in clip.frames:
                await sink.send(frame)
                if self.download_pace:
                    await asyncio.sleep(self.download_pace)
        finally:
            self.downloads_ended += 1

    async def get_events(
        self, kind: str, start_ms: float, end_ms: float, max_results: int | None
    ) -> list[dict[str, Any]]:
        return [dict(r) for r in self.history if kind in ("history", "video")]
