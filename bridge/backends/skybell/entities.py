"""How a SkyBell doorbell appears to eufy clients: a station and a doorbell device sharing the
SkyBell serial number, with the cloud's settings as switches, numbers and selects."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any

from bridge.backends.skybell import cloud_settings
from bridge.driver import Device, Entity, Station
from bridge.driver import properties as p
from bridge.driver.model import DOWNLOAD_COMMANDS, LIVE_COMMANDS

DOORBELL_TYPE = 5
PICTURE_TYPE = {"ext": "jpg", "mime": "image/jpeg"}


def settings_of(detail: dict[str, Any]) -> dict[str, Any]:
    """A device's settings object; the recorded answers repeat ``basic_motion`` at the top
    level, which stands in when the settings lack it."""
    settings = detail.get("settings")
    settings = dict(settings) if isinstance(settings, dict) else {}
    if "basic_motion" not in settings and isinstance(detail.get("basic_motion"), dict):
        settings["basic_motion"] = detail["basic_motion"]
    return settings


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


def build(detail: dict[str, Any], backend: Any, last_color: str) -> tuple[Station, Device]:
    """The station and the doorbell of one device as the cloud describes it; ``last_color`` is
    the LED colour to show (and restore) while the LED is off."""
    serial = str(detail["serial"])
    settings = settings_of(detail)
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
    bell = Device(serial, backend=backend, station_serial=serial,
                  commands=LIVE_COMMANDS + DOWNLOAD_COMMANDS)
    p.define_station(station, name=name, model=model, hardware=hardware, software=software,
                     type_=DOORBELL_TYPE, mac_address=str(info.get("MAC_address") or ""),
                     lan_ip_address="")
    p.define_device(bell, name=name, model=model, hardware=hardware, software=software,
                    type_=DOORBELL_TYPE)
    bell.define(p.RINGING, False)
    bell.define(p.MOTION_DETECTED, False)
    bell.define(p.PERSON_DETECTED, False)
    bell.define(p.PERSON_NAME, "")
    for meta, value in cloud_settings.read(settings, last_color).values():
        bell.define(meta, value)
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
