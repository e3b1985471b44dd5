"""A simulated doorbell's settings object: what the cloud holds, what it lets clients change,
and how it refuses the rest.

The shape follows the recorded answers of the real cloud in aioskybellgen's test fixtures
(``device.json``, ``device_settings.json``), which hold more than the seed's examples:
``basic_motion``, ``time_zone_info``, ``led_control``, ``tones``, ``pir_sensitivity`` and the
alarm and mode objects a doorbell reports.  Where the seed's documentation and those answers
disagree, the simulator accepts what real clients send (both, where possible); each such place
says so below.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

CHIME_FILES = ["user.wav", "1.wav", "2.wav", "3.wav", "4.wav", "5.wav", "8.wav", "9.wav",
               "cartoon-melodic-bell.wav", "home.wav", "modern.wav", "onemomentplease.wav",
               "single-press.wav", "wifi_ring.wav"]
SAME_AS_MOTION = 0xFFFFFFFF
"""A face or human-body sensitivity of this value follows ``motion_sensitivity``."""
BASIC_MOTION_FIELDS = ("motion_notify", "motion_record", "fd_notify", "fd_record",
                       "hbd_notify", "hbd_record")
LED_CONTROLS = ("Normal",)
"""The only LED control mode the recorded answers and aioskybellgen know."""


class SettingError(ValueError):
    """A setting the cloud refuses (HTTP 400 with this message)."""


Check = Callable[[Any, Any], Any]
"""A setting's check: (new value, current value) -> the value to store, or SettingError."""


def _whole(value: Any, low: int, high: int, *, also: tuple[int, ...] = ()) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError("must be a whole number")
    if value in also:
        return value
    if not low <= value <= high:
        raise SettingError(f"must be {low}..{high}")
    return value


def _range(low: int, high: int, *, also: tuple[int, ...] = ()) -> Check:
    return lambda value, _: _whole(value, low, high, also=also)


def _enum(*allowed: Any) -> Check:
    def check(value: Any, _: Any) -> Any:
        if isinstance(value, bool) or value not in allowed:
            raise SettingError(f"must be one of {', '.join(map(repr, allowed))}")
        return value
    return check


def _boolean(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError("must be true or false")
    return value


def _text(value: Any, _: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise SettingError("must be a string of 1..64 characters")
    return value


def _color(value: Any, _: Any) -> str:
    """``#RRGGBB``, or "" for LED off (the recorded answer to aioskybellgen turning the LED
    off, ``device_settings_led_false.json``; the seed only shows colours)."""
    if value == "":
        return value
    if not (isinstance(value, str) and len(value) == 7 and value[0] == "#"):
        raise SettingError("must be a #RRGGBB colour, or empty for LED off")
    try:
        int(value[1:], 16)
    except ValueError:
        raise SettingError("must be a #RRGGBB colour, or empty for LED off") from None
    return value


def _zones(value: Any, _: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingError("must be an object with x, y, zones and threshold")
    x, y, zones = value.get("x"), value.get("y"), value.get("zones")
    if not (isinstance(x, int) and isinstance(y, int) and 1 <= x <= 10 and 1 <= y <= 10):
        raise SettingError("x and y must be 1..10")
    if not (isinstance(zones, list) and len(zones) == y
            and all(isinstance(r, list) and len(r) == x for r in zones)):
        raise SettingError("zones must be y rows of x cells")
    return value


def _basic_motion(value: Any, current: Any) -> dict[str, bool]:
    """Any of the six switches; the ones not sent keep their value (aioskybellgen sends the
    whole object, a partial one changes only what it names)."""
    if not isinstance(value, dict) or not value:
        raise SettingError(f"must be an object of {', '.join(BASIC_MOTION_FIELDS)}")
    for key, switch in value.items():
        if key not in BASIC_MOTION_FIELDS:
            raise SettingError(f"{key} is not one of {', '.join(BASIC_MOTION_FIELDS)}")
        if not isinstance(switch, bool):
            raise SettingError(f"{key} must be true or false")
    return {**(current or {}), **value}


def _coordinate(key: str, value: Any, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not -limit <= value <= limit:
        raise SettingError(f"{key} must be a number in -{limit:g}..{limit:g}")
    return float(value)


def _time_zone_info(value: Any, current: Any) -> dict[str, Any]:
    """The doorbell's location: ``mapLat``, ``mapLong`` (numbers) and ``place`` (text)."""
    if not isinstance(value, dict) or not value:
        raise SettingError("must be an object of mapLat, mapLong and place")
    merged = dict(current or {})
    for key, item in value.items():
        if key == "mapLat":
            merged[key] = _coordinate(key, item, 90)
        elif key == "mapLong":
            merged[key] = _coordinate(key, item, 180)
        elif key == "place":
            if not isinstance(item, str) or len(item) > 128:
                raise SettingError("place must be a string of at most 128 characters")
            merged[key] = item
        else:
            raise SettingError(f"{key} is not one of mapLat, mapLong, place")
    return merged


# The seed documents sensitivities "at or above 3 and under 1000"; the recorded answers hold
# motion_sensitivity 1000 and aioskybellgen sends up to 1000, so 1000 is accepted.
SENSITIVITY = _range(0, 1000)

WRITABLE: dict[str, Check] = {
    "device_name": _text,
    "time_zone": _text,
    "time_zone_info": _time_zone_info,
    "led_color": _color,
    "led_control": _enum(*LED_CONTROLS),
    "brightness": _range(0, 999),
    "button_pressed": _boolean,
    "indoor_chime": _boolean,
    "digital_chime": _boolean,
    "outdoor_chime": _boolean,
    "skybell_chime": _boolean,
    "outdoor_chime_volume": _enum(0, 1, 2),
    "speaker_volume": _enum(0, 1, 2),
    "motion_detection": _boolean,
    "debug_motion_detect": _boolean,
    "motion_sensitivity": SENSITIVITY,
    "pir_sensitivity": SENSITIVITY,
    "hmbd_sensitivity": _range(0, 1000, also=(SAME_AS_MOTION,)),
    "fd_sensitivity": _range(0, 1000, also=(SAME_AS_MOTION,)),
    "fr_sensitivity": SENSITIVITY,
    "basic_motion": _basic_motion,
    "image_quality": _enum(0, 1, 2, 3),
    "video_rotation": _enum(0, 1, 2, 3),
    # "" is the recorded answers' value (the doorbell's own tone); the seed lists the files
    "chime_file": _enum("", *CHIME_FILES),
    "motion_zone_config": _zones,
}
"""Every setting a client may change, with its check."""


def defaults(name: str, device_id: str, account_id: str) -> dict[str, Any]:
    """A new doorbell's settings: the seed's defaults, completed with the keys of the recorded
    answers (a fresh doorbell has no custom tones yet)."""
    return {
        "device_id": device_id, "account_id": account_id, "device_name": name,
        "time_zone": "EST5EDT,M3.2.0,M11.1.0",
        "time_zone_info": {"mapLat": 40.6762, "mapLong": -73.9586, "place": "Brooklyn, NY"},
        "led_color": "#00ff00", "led_control": "Normal", "brightness": 0,
        "button_pressed": True, "button_notifications": True, "motion_notifications": True,
        "indoor_chime": True, "digital_chime": False, "outdoor_chime": True,
        "skybell_chime": True, "outdoor_chime_volume": 0, "outdoor_chime_color": "#ffffff",
        "speaker_volume": 0, "motion_detection": True, "debug_motion_detect": False,
        "motion_sensitivity": 50, "pir_sensitivity": 500,
        "hmbd_sensitivity": SAME_AS_MOTION, "fd_sensitivity": SAME_AS_MOTION,
        "fr_sensitivity": 500,
        "basic_motion": dict.fromkeys(BASIC_MOTION_FIELDS, True),
        "image_quality": 0, "image_aspect": "Wide", "video_rotation": 0,
        "video_datetime": True, "chime_file": "1.wav", "chime_file_motion": "",
        "tones": {"button": None, "motion": None, "test": None},
        "event_duration": 30, "force_turn": False, "stream_disable_motion": True,
        "telemetry_freq": 60, "using_rules": False, "modes": [], "selected_mode_id": 0,
        "audio_alarm_enabled": False, "audio_cmd_enabled": False,
        "motion_zone_config": {"x": 8, "y": 5, "threshold": 1, "zones": [
            [{"ignore": False, "sensitivity": 100} for _ in range(8)] for _ in range(5)]},
    }


def apply(settings: dict[str, Any], changes: Any) -> None:
    """Check every change first, then store them all: a refused update changes nothing."""
    if not isinstance(changes, dict) or not changes:
        raise SettingError("send an object with at least one setting")
    checked = {}
    for key, value in changes.items():
        check = WRITABLE.get(key)
        if check is None:
            raise SettingError(f"{key} is not a setting")
        try:
            checked[key] = check(value, copy.deepcopy(settings.get(key)))
        except SettingError as exc:
            raise SettingError(f"{key} {exc}") from None
    settings.update(checked)
