"""aioskybellgen, the client library Home Assistant uses for SkyBell doorbells, drives the
simulated cloud as it drives the real one: every call accepted, every answer understood.

The library's base address is hard-coded (``https://api.skybell.network``).  It takes the
aiohttp session to use, so the session's resolver sends that name to the simulator, which
serves HTTPS with a certificate from a test authority the session trusts: the library runs
unchanged, with its real addresses, headers and parsing.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp.abc import AbstractResolver, ResolveResult
from aioskybellgen import Skybell, SkyBellUDPProtocol
from aioskybellgen.device import SkybellDevice
from aioskybellgen.exceptions import SkybellRequestException
from aioskybellgen.helpers import const as CONST

from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from bridge.simulators.skybell.cloud import SimDevice

CLOUD_HOST = "api.skybell.network"


class ToSimulator(AbstractResolver):
    """Resolves the real cloud's name to the simulator's address and port; nothing else."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host != CLOUD_HOST:
            raise OSError(f"{host} is not reachable from this test")
        return [ResolveResult(hostname=host, host="127.0.0.1", port=self.port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        """Nothing to release."""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cloud:
    """The simulator, the library's session to it and every answer the library received."""

    def __init__(self, sim: SkyBellSimulator, skybell: Skybell,
                 answers: list[tuple[str, str, int]]) -> None:
        self.sim = sim
        self.skybell = skybell
        self.answers = answers
        """(method, address, status) of every answer the library received."""

    def refused(self) -> list[tuple[str, str, int]]:
        return [answer for answer in self.answers if answer[2] >= 400]

    def device(self, library_device: SkybellDevice) -> SimDevice:
        return self.sim.cloud.devices[library_device.device_id]


@pytest.fixture
async def cloud() -> AsyncIterator[Cloud]:
    authority = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(CLOUD_HOST, "127.0.0.1").configure_cert(served)
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    sim = SkyBellSimulator(CloudConfig(devices=2, tls=served, udp_port=free_udp_port()))
    await sim.start()
    # the library's own listener binds port 5000 on every interface in a thread; its protocol
    # on the simulator's LAN port is the same parsing, and needs no privileges
    lan, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: SkyBellUDPProtocol(Skybell), local_addr=("127.0.0.1", sim.config.udp_port))
    answers: list[tuple[str, str, int]] = []

    async def answered(_session: Any, _context: Any, params: Any) -> None:
        answers.append((params.method, str(params.url), params.response.status))

    tracing = aiohttp.TraceConfig()
    tracing.on_request_end.append(answered)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=ToSimulator(sim.port), ssl=trusted),
        trace_configs=[tracing])
    skybell = Skybell(username=sim.config.email, password=sim.config.password,
                      session=session, disable_cache=True, login_sleep=False)
    result = Cloud(sim, skybell, answers)
    try:
        yield result
    finally:
        await session.close()
        lan.close()
        await sim.stop()


async def wait_for(condition: Callable[[], Any], seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)


async def test_it_logs_in_and_reads_each_doorbell_as_from_the_real_cloud(cloud):
    devices = await cloud.skybell.async_initialize()
    assert cloud.skybell.user_id == cloud.sim.cloud.account_id
    assert sorted(d.device_id for d in devices) == sorted(cloud.sim.cloud.devices)
    for device in devices:
        sim = cloud.device(device)
        assert device.name == sim.name and device.serial_no == sim.serial
        assert device.mac and device.firmware_ver == "0.5.11" and device.type
        assert device.status == CONST.STATUS_UP and device.is_up
        assert device.last_connected is not None and device.last_disconnected is not None
        assert device.last_seen is not None and device.last_seen.tzinfo is not None
        assert device.ip_address == sim.ip_address
        assert device.wifi_ssid and device.wifi_link_quality.endswith("/100")
        assert int(device.wifi_signal_level) < 0
        assert device.normal_led_is_on and device.led_control == CONST.NORMAL_LED_CONTROL
        assert device.motion_detection and device.basic_motion_hbd_record is True
        assert isinstance(device.location_lat, float) and device.location_place
        assert device.hmbd_sensitivity == CONST.USE_MOTION_SENSITIVITY
        assert device.pir_sensitivity == sim.settings["pir_sensitivity"]
    assert await cloud.skybell.async_refresh_session()
    assert cloud.sim.cloud.logins == 1 and cloud.sim.cloud.refreshes == 1
    assert cloud.refused() == []


# (what the library is asked to set, the value, the library's property that reads it back,
# where the simulated cloud keeps it)
SETTINGS: list[tuple[str, Any, str, tuple[str, ...]]] = [
    ("name", "Porch Left", "name", ("device_name",)),
    ("button_pressed", False, "button_pressed", ("button_pressed",)),
    ("led_control", "Normal", "led_control", ("led_control",)),
    ("led_color", "#ff00ff", "led_color", ("led_color",)),
    ("indoor_chime", False, "indoor_chime", ("indoor_chime",)),
    ("digital_chime", True, "digital_chime", ("digital_chime",)),
    ("outdoor_chime", False, "outdoor_chime", ("outdoor_chime",)),
    ("outdoor_chime_volume", 2, "outdoor_chime_volume", ("outdoor_chime_volume",)),
    ("speaker_volume", 1, "speaker_volume", ("speaker_volume",)),
    ("debug_motion_detect", True, "debug_motion_detect", ("debug_motion_detect",)),
    ("motion_sensitivity", 1000, "motion_sensitivity", ("motion_sensitivity",)),
    ("hmbd_sensitivity", 500, "hmbd_sensitivity", ("hmbd_sensitivity",)),
    ("fd_sensitivity", 573, "fd_sensitivity", ("fd_sensitivity",)),
    ("pir_sensitivity", 524, "pir_sensitivity", ("pir_sensitivity",)),
    ("image_quality", 3, "image_quality", ("image_quality",)),
    ("motion_notify", False, "basic_motion_notify", ("basic_motion", "motion_notify")),
    ("motion_record", False, "basic_motion_record", ("basic_motion", "motion_record")),
    ("fd_notify", False, "basic_motion_fd_notify", ("basic_motion", "fd_notify")),
    ("fd_record", False, "basic_motion_fd_record", ("basic_motion", "fd_record")),
    ("hbd_notify", False, "basic_motion_hbd_notify", ("basic_motion", "hbd_notify")),
    ("hbd_record", False, "basic_motion_hbd_record", ("basic_motion", "hbd_record")),
    ("mapLat", 51.5072, "location_lat", ("time_zone_info", "mapLat")),
    ("mapLong", -0.1276, "location_lon", ("time_zone_info", "mapLong")),
    ("place", "London", "location_place", ("time_zone_info", "place")),
    # last: the library refuses motion settings while motion detection is off
    ("motion_detection", False, "motion_detection", ("motion_detection",)),
]


def stored(settings: dict[str, Any], where: tuple[str, ...]) -> Any:
    for key in where:
        settings = settings[key]
    return settings


async def test_every_setting_it_writes_is_accepted_and_read_back(cloud):
    [device, _] = await cloud.skybell.async_initialize()
    sim = cloud.device(device)
    for key, value, reader, where in SETTINGS:
        await device.async_set_setting(key, value)
        assert getattr(device, reader) == value, key
        assert stored(sim.settings, where) == value, key
    assert cloud.refused() == []


async def test_it_turns_the_led_off_with_an_empty_colour_and_on_again(cloud):
    [device, _] = await cloud.skybell.async_initialize()
    sim = cloud.device(device)
    await device.async_set_setting(CONST.NORMAL_LED, False)
    assert not device.normal_led_is_on and sim.settings["led_color"] == ""
    await device.async_set_setting(CONST.NORMAL_LED, True)
    assert device.normal_led_is_on
    assert sim.settings["led_color"] == CONST.DEFAULT_NORMAL_LED_COLOR
    assert cloud.refused() == []


async def test_a_setting_the_cloud_refuses_reaches_it_as_a_request_error(cloud):
    [device, _] = await cloud.skybell.async_initialize()
    with pytest.raises(SkybellRequestException, match="led_color"):
        await device.async_set_setting(CONST.LED_COLOR, "green")
    assert cloud.device(device).settings["led_color"] == "#00ff00"
    assert [status for _, _, status in cloud.refused()] == [400]


async def test_rings_and_motions_arrive_on_the_lan_and_as_activities_with_clips(
        cloud, tmp_path: Path):
    devices = await cloud.skybell.async_initialize()
    device = next(d for d in devices if cloud.device(d).index == 2)
    other = next(d for d in devices if d is not device)
    sim = cloud.device(device)
    ring = cloud.sim.cloud.event(sim, "doorbell")
    await wait_for(lambda: device.latest_local_doorbell_event_time is not None)
    motion = cloud.sim.cloud.event(sim, "motion")
    await wait_for(lambda: device.latest_local_motion_event_time is not None)
    assert other.latest_local_doorbell_event_time is None  # the sender's address tells
    await wait_for(lambda: ring["video_ready"] and motion["video_ready"])

    await device.async_update()
    assert device.latest_doorbell_event_time == datetime.fromtimestamp(
        ring["event_time"] / 1000, UTC)
    assert device.latest_motion_event_time == datetime.fromtimestamp(
        motion["event_time"] / 1000, UTC)
    assert device.images[CONST.ACTIVITY][:2] == b"\xff\xd8"  # the latest activity's picture
    assert device.images[CONST.SNAPSHOT][:2] == b"\xff\xd8"
    latest = device.activities(limit=1)[0]
    assert latest[CONST.VIDEO_URL] == f"/activity/{motion['activity_id']}/video"

    assert (await device.async_get_activity_video_url()).startswith(f"{cloud.sim.url}/_media/")
    await device.async_download_videos(path=str(tmp_path / "clip"), limit=1)
    clip = (tmp_path / f"clip_{motion['event_time']}.mp4").read_bytes()
    assert clip[4:8] == b"ftyp" and len(clip) == latest["video_size"]

    await device.async_delete_activity(ring["activity_id"])
    assert ring["activity_id"] not in {a["activity_id"] for a in cloud.sim.cloud.activities}
    assert cloud.refused() == []


async def test_a_live_view_answers_its_signalling_and_leaves_an_lstream_activity(cloud):
    [device, _] = await cloud.skybell.async_initialize()
    sim = cloud.device(device)
    stream = await device.async_start_livestream()
    assert stream["state"] is True and sim.streaming
    assert stream["signedWSS"].startswith("wss://") and len(stream["signed"]) == 2
    assert {"ice", "channelARN", "credentials", "endpoints", "aws_region"} <= set(stream)
    await device.async_stop_livestream()
    assert not sim.streaming
    await device.async_update()
    assert device.latest_livestream_event_time is not None
    await device.async_reboot_device()
    assert sim.reboots == 1
    assert cloud.refused() == []
