"""Every setting of a real SkyBell doorbell as a eufy property, and the way back.

The table follows what the real cloud holds (PROTOCOL.md §3; the recorded answers in
aioskybellgen's test fixtures) and what the Home Assistant integration built on aioskybellgen
makes of it: switches for the chimes, motion detection and the six basic-motion switches,
numbers for the sensitivities and the location, selects for volumes, image quality and rotation,
a light for the button LED.  Each property's metadata ``key`` is the cloud's setting, dotted for
a field of a nested object (``basic_motion.motion_notify``).

A setting the cloud does not hold (older firmware) is no property at all, and a value that is
not what the setting holds (the wrong type, a tone nobody knows) leaves the property out rather
than failing the doorbell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.driver import properties as p
from bridge.driver.model import PropertyMetadata

SAME_AS_MOTION = 0xFFFFFFFF
"""A face or human-body sensitivity of this value follows ``motion_sensitivity``; eufy clients
see it as -1."""
DEFAULT_LED_COLOR = "#00ff00"
"""The colour the LED comes back in when it was never seen on (aioskybellgen's default)."""
LED_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
LEVELS = {0: "Low", 1: "Medium", 2: "High"}
CHIME_FILES = ["user.wav", "1.wav", "2.wav", "3.wav", "4.wav", "5.wav", "8.wav", "9.wav",
               "cartoon-melodic-bell.wav", "home.wav", "modern.wav", "onemomentplease.wav",
               "single-press.wav", "wifi_ring.wav"]
DEFAULT_TONE = -1
"""``chime_file`` "", the doorbell's own tone (the recorded answers hold it; the seed lists only
files)."""
SENSITIVITY = "0-2 low/medium/high, 3-1000 per mille"


def _boolean(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not true or false")
    return raw


def _whole(raw: Any) -> int:
    """A whole number; the cloud sends some as text ("1"), as aioskybellgen allows for."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number")
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    if isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer()):
        return int(raw)
    raise ValueError(f"{raw!r} is not a whole number")


def _real(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"{raw!r} is not a number")
    return float(raw)


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not text")
    return raw


def _follows_motion_in(raw: Any) -> int:
    value = _whole(raw)
    return -1 if value == SAME_AS_MOTION else value


def _follows_motion_out(value: int) -> int:
    return SAME_AS_MOTION if value == -1 else int(value)


def _tone_in(raw: Any) -> int:
    if raw == "":
        return DEFAULT_TONE
    if raw not in CHIME_FILES:
        raise ValueError(f"{raw!r} is not a known tone")
    return CHIME_FILES.index(raw)


def _tone_out(index: int) -> str:
    return "" if index == DEFAULT_TONE else CHIME_FILES[index]


@dataclass(frozen=True)
class Setting:
    """One cloud setting (or one field of a nested one) as one eufy property."""

    meta: PropertyMetadata
    to_property: Callable[[Any], Any]
    to_cloud: Callable[[Any], Any] = lambda value: value
    when_null: Any = None
    """The property's value when the cloud holds null; None: no property."""

    @property
    def path(self) -> tuple[str, ...]:
        """Where the setting is in the settings object: ``("basic_motion", "fd_notify")``."""
        return tuple(str(self.meta.key).split("."))


def _switch(meta: PropertyMetadata) -> Setting:
    return Setting(meta, _boolean)


def _own_switch(name: str, label: str, key: str) -> Setting:
    return _switch(PropertyMetadata(name, label, "boolean", key=key, writeable=True))


def _sensitivity(meta: PropertyMetadata, *, follows_motion: bool = False) -> Setting:
    if follows_motion:
        # the seed: "not set" follows motion_sensitivity, as 0xFFFFFFFF does
        return Setting(meta.with_(min=-1, max=1000, steps=1,
                                  label=f"{meta.label} ({SENSITIVITY}, -1 as motion)"),
                       _follows_motion_in, _follows_motion_out, when_null=-1)
    return Setting(meta.with_(min=0, max=1000, steps=1, label=f"{meta.label} ({SENSITIVITY})"),
                   _whole)


def _own_number(name: str, label: str, key: str, **meta: Any) -> PropertyMetadata:
    return PropertyMetadata(name, label, "number", key=key, writeable=True, **meta)


SETTINGS: tuple[Setting, ...] = (
    # buttons and motion: the switches Home Assistant makes of them
    _switch(p.NOTIFICATION_RING.with_(key="button_pressed")),
    _switch(p.MOTION_DETECTION.with_(key="motion_detection")),
    _own_switch("motionDetectionDebug", "Boxes around detected motion", "debug_motion_detect"),
    _switch(p.NOTIFICATION_MOTION.with_(key="basic_motion.motion_notify")),
    _own_switch("recordingMotion", "Record motion", "basic_motion.motion_record"),
    _switch(p.NOTIFICATION_PERSON.with_(key="basic_motion.hbd_notify")),
    _own_switch("recordingPerson", "Record people", "basic_motion.hbd_record"),
    _own_switch("notificationFace", "Face notification", "basic_motion.fd_notify"),
    _own_switch("recordingFace", "Record faces", "basic_motion.fd_record"),
    # sensitivities
    _sensitivity(p.MOTION_DETECTION_SENSITIVITY.with_(key="motion_sensitivity")),
    _sensitivity(_own_number("pirSensitivity", "Infrared motion sensor sensitivity",
                             "pir_sensitivity")),
    _sensitivity(_own_number("personDetectionSensitivity", "Person detection sensitivity",
                             "hmbd_sensitivity"), follows_motion=True),
    _sensitivity(_own_number("faceDetectionSensitivity", "Face detection sensitivity",
                             "fd_sensitivity"), follows_motion=True),
    _sensitivity(_own_number("faceRecognitionSensitivity", "Face recognition sensitivity",
                             "fr_sensitivity")),
    # the button LED: on/off and colour share led_color ("" is off)
    Setting(p.STATUS_LED.with_(key="led_color", label="Button LED"), lambda raw: _text(raw) != ""),
    Setting(PropertyMetadata("ledColor", "Button LED colour (#RRGGBB)", "string",
                             key="led_color", writeable=True, min=7, max=7), _text),
    Setting(_own_number("ledBrightness", "Button LED brightness (0-2 low/medium/high, "
                        "3-999 per mille)", "brightness", min=0, max=999, steps=1), _whole),
    Setting(PropertyMetadata("ledControl", "Button LED control", "string", key="led_control"),
            _text),
    # chimes and sound
    _switch(p.CHIME_INDOOR.with_(key="indoor_chime")),
    _own_switch("chimeDigital", "Digital indoor chime", "digital_chime"),
    _own_switch("chimeOutdoor", "Doorbell speaker chime", "outdoor_chime"),
    _own_switch("chimeSkyBell", "SkyBell Chime accessory", "skybell_chime"),
    Setting(p.RINGTONE_VOLUME.with_(key="outdoor_chime_volume", states=LEVELS,
                                    label="Doorbell chime volume"), _whole),
    Setting(p.SPEAKER_VOLUME.with_(key="speaker_volume", states=LEVELS,
                                   label="Speaker volume in live view"), _whole),
    Setting(_own_number("chimeTone", "Chime tone", "chime_file",
                        states={DEFAULT_TONE: "Doorbell default", **dict(enumerate(CHIME_FILES))}),
            _tone_in, _tone_out),
    # video
    Setting(p.VIDEO_STREAMING_QUALITY.with_(key="image_quality", states={
        0: "480p", 1: "720p low", 2: "720p high", 3: "1080p"}), _whole),
    Setting(_own_number("videoRotation", "Video rotation", "video_rotation",
                        states={0: "0°", 1: "90°", 2: "180°", 3: "270°"}), _whole),
    # where the doorbell is
    Setting(PropertyMetadata("timeZone", "Time zone (POSIX TZ)", "string", key="time_zone",
                             writeable=True, min=1, max=64), _text),
    Setting(_own_number("locationLatitude", "Latitude", "time_zone_info.mapLat",
                        min=-90, max=90, unit="°"), _real, float),
    Setting(_own_number("locationLongitude", "Longitude", "time_zone_info.mapLong",
                        min=-180, max=180, unit="°"), _real, float),
    Setting(p.LOCATION_ADDRESS.with_(key="time_zone_info.place", writeable=True, max=128),
            _text),
)
BY_NAME = {s.meta.name: s for s in SETTINGS}


def _lookup(settings: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """(found, value) of a possibly nested setting."""
    value: Any = settings
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def read(settings: dict[str, Any], last_color: str) -> dict[str, tuple[PropertyMetadata, Any]]:
    """Every property the settings object holds, with its value.

    ``ledColor`` shows ``last_color`` while the LED is off, so the colour it will come back in
    is always visible and writeable.
    """
    found: dict[str, tuple[PropertyMetadata, Any]] = {}
    for setting in SETTINGS:
        present, raw = _lookup(settings, setting.path)
        if not present:
            continue
        if raw is None:
            value = setting.when_null
        else:
            try:
                value = setting.to_property(raw)
            except (ValueError, TypeError, IndexError):
                continue
        if value is None:
            continue
        if setting.meta.name == "ledColor" and not value:
            value = last_color
        found[setting.meta.name] = (setting.meta, value)
    return found


def changes(name: str, value: Any, settings: dict[str, Any], last_color: str) -> dict[str, Any]:
    """The settings update that writes one property: only the changed setting.

    A field of ``basic_motion`` or ``time_zone_info`` is sent inside the whole object, as
    aioskybellgen (and so Home Assistant) sends it to the real cloud.  Turning the LED on sends
    the last colour it had.
    """
    setting = BY_NAME[name]
    if name == "statusLed":
        return {"led_color": last_color if value else ""}
    cloud_value = setting.to_cloud(value)
    top, *rest = setting.path
    if not rest:
        return {top: cloud_value}
    current = settings.get(top)
    whole = dict(current) if isinstance(current, dict) else {}
    whole[rest[0]] = cloud_value
    return {top: whole}


def merged(settings: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The settings after an update the cloud accepted, when its answer does not say: nested
    objects are merged, as the cloud merges a partial one."""
    result = dict(settings)
    for key, value in update.items():
        current = result.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            result[key] = {**current, **value}
        else:
            result[key] = value
    return result
