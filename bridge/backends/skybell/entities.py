"""How a SkyBell doorbell appears to eufy clients: a station and a doorbell device sharing the
SkyBell serial number, with the cloud's settings as switches, numbers and selects."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.driver import Device, Entity, Station
from bridge.driver import properties as p
from bridge.driver.model import PropertyMetadata

DOORBELL_TYPE = 5
PICTURE_TYPE = {"ext": "jpg", "mime": "image/jpeg"}
SAME_AS_MOTION = 0xFFFFFFFF
LEVELS = {0: "Low", 1: "Medium", 2: "High"}
CHIME_FILES = ["user.wav", "1.wav", "2.wav", "3.wav", "4.wav", "5.wav", "8.wav", "9.wav",
               "cartoon-melodic-bell.wav", "home.wav", "modern.wav", "onemomentplease.wav",
               "single-press.wav", "wifi_ring.wav"]


@dataclass(frozen=True)
class Setting:
    """One cloud setting as one eufy property, with the conversions both ways."""

    meta: PropertyMetadata
    key: str
    to_property: Callable[[Any], Any] = lambda v: v
    to_cloud: Callable[[Any], Any] = lambda v: v


def _person_in(value: Any) -> int:
    return -1 if value in (None, SAME_AS_MOTION) else int(value)


def _person_out(value: int) -> int:
    return SAME_AS_MOTION if value == -1 else int(value)


def _tone_in(value: Any) -> int:
    return CHIME_FILES.index(value) if value in CHIME_FILES else 1


SETTINGS: tuple[Setting, ...] = (
    Setting(p.MOTION_DETECTION.with_(key="motion_detection"), "motion_detection", bool),
    Setting(p.MOTION_DETECTION_SENSITIVITY.with_(
        key="motion_sensitivity", min=0, max=999, default=50,
        label="Motion detection sensitivity (0-2 low/medium/high, 3-999 per mille)"),
        "motion_sensitivity", int),
    Setting(PropertyMetadata(
        "personDetectionSensitivity", "Person detection sensitivity (-1: as motion)",
        "number", key="hmbd_sensitivity", writeable=True, min=-1, max=999, default=-1),
        "hmbd_sensitivity", _person_in, _person_out),
    Setting(p.CHIME_INDOOR.with_(key="indoor_chime", default=True), "indoor_chime", bool),
    Setting(PropertyMetadata("chimeDigital", "Digital indoor chime", "boolean",
                             key="digital_chime", writeable=True, default=False),
            "digital_chime", bool),
    Setting(PropertyMetadata("chimeOutdoor", "Doorbell speaker chime", "boolean",
                             key="outdoor_chime", writeable=True, default=True),
            "outdoor_chime", bool),
    Setting(p.RINGTONE_VOLUME.with_(key="outdoor_chime_volume", states=LEVELS, default=0,
                                    label="Doorbell chime volume"),
            "outdoor_chime_volume", int),
    Setting(p.SPEAKER_VOLUME.with_(key="speaker_volume", states=LEVELS, default=0),
            "speaker_volume", int),
    Setting(PropertyMetadata("ledColor", "LED colour (#RRGGBB)", "string", key="led_color",
                             writeable=True, min=7, max=7, default="#00FF00"),
            "led_color", str),
    Setting(PropertyMetadata("ledBrightness", "LED brightness (0-2 low/medium/high, "
                             "3-999 per mille)", "number", key="brightness", writeable=True,
                             min=0, max=999, default=0),
            "brightness", int),
    Setting(p.VIDEO_STREAMING_QUALITY.with_(key="image_quality", default=0, states={
        0: "480p", 1: "720p low", 2: "720p high", 3: "1080p"}), "image_quality", int),
    Setting(PropertyMetadata("videoRotation", "Video rotation", "number",
                             key="video_rotation", writeable=True, default=0,
                             states={0: "0°", 1: "90°", 2: "180°", 3: "270°"}),
            "video_rotation", int),
    Setting(PropertyMetadata("chimeTone", "Chime tone", "number", key="chime_file",
                             writeable=True, default=1,
                             states=dict(enumerate(CHIME_FILES))),
            "chime_file", _tone_in, lambda index: CHIME_FILES[index]),
)
BY_NAME = {s.meta.name: s for s in SETTINGS}
LED_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def model_of(device: dict[str, Any]) -> str:
    hardware = str(device.get("hardware") or "")
    return hardware.split(":", 1)[-1] or "SkyBell"


def signal_level(link_quality: str | None) -> int:
    """Telemetry's ``link_quality`` ("89/100") as eufy's 0-4 signal level."""
    try:
        got, _, top = str(link_quality).partition("/")
        ratio = int(got) / int(top or 100)
    except (ValueError, ZeroDivisionError):
        return 0
    return min(4, max(0, round(ratio * 4)))


def online(device: dict[str, Any]) -> bool:
    """Whether the cloud last saw the doorbell connect rather than disconnect."""
    connected, disconnected = device.get("last_connected"), device.get("last_disconnected")
    return not disconnected or bool(connected and str(connected) > str(disconnected))


def build(detail: dict[str, Any], backend: Any) -> tuple[Station, Device]:
    serial = str(detail["serial"])
    settings = detail.get("settings") or {}
    info = detail.get("device_settings") or {}
    name = str(detail.get("name") or settings.get("device_name") or serial)
    model = model_of(detail)
    hardware = str(info.get("hardware_version") or model)
    software = str(info.get("firmware_version") or detail.get("firmware") or "")

    station = Station(serial, backend=backend, commands=("reboot", "chime",
                                                         "database_query_latest_info",
                                                         "database_query_local",
                                                         "database_count_by_date",
                                                         "database_delete"),
                      connected=online(detail))
    bell = Device(serial, backend=backend, station_serial=serial)
    p.define_station(station, name=name, model=model, hardware=hardware, software=software,
                     type_=DOORBELL_TYPE, mac_address=str(info.get("MAC_address") or ""),
                     lan_ip_address="")
    p.define_device(bell, name=name, model=model, hardware=hardware, software=software,
                    type_=DOORBELL_TYPE)
    bell.define(p.RINGING, False)
    bell.define(p.MOTION_DETECTED, False)
    bell.define(p.PERSON_DETECTED, False)
    bell.define(p.PERSON_NAME, "")
    for setting in SETTINGS:
        raw = settings.get(setting.key, setting.meta.default)
        bell.define(setting.meta, None if raw is None else setting.to_property(raw))
    bell.define(p.WIFI_RSSI.with_(min=-100, max=0), None)
    bell.define(p.WIFI_SIGNAL_LEVEL, 0)
    bell.define(p.PICTURE, None)
    apply_telemetry(bell, detail.get("telemetry") or {}, lambda e, n, v: e.properties
                    .__setitem__(n, v), station=station)
    return station, bell


def apply_telemetry(bell: Device, telemetry: dict[str, Any],
                    update: Callable[[Entity, str, Any], None], *,
                    station: Station | None = None) -> None:
    """A telemetry check-in's signal on the doorbell and, given the station, its LAN address
    (kept when the check-in carries none, or something that is not an IP address)."""
    if "signal_level" in telemetry:
        with contextlib.suppress(ValueError):
            update(bell, "wifiRssi", int(telemetry["signal_level"]))
    if "link_quality" in telemetry:
        update(bell, "wifiSignalLevel", signal_level(telemetry["link_quality"]))
    address = lan_address(telemetry)
    if station is not None and address:
        update(station, "lanIpAddress", address)


def lan_address(telemetry: dict[str, Any]) -> str:
    """The doorbell's LAN address from telemetry, or "" when it has none that is an address."""
    try:
        return str(ipaddress.ip_address(str(telemetry.get("ip_address") or "")))
    except ValueError:
        return ""
