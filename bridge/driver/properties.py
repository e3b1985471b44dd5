"""Metadata of the eufy properties the bridge uses, under eufy-security-client's names.

Backends take these and refine them (real ranges, states, keys) with ``PropertyMetadata.with_``,
so a property means the same thing, with the same name and label, whichever vendor fills it.
"""

from __future__ import annotations

from bridge.driver.model import Device, Entity, Station
from bridge.driver.model import PropertyMetadata as P

NAME = P("name", "Name", "string")
MODEL = P("model", "Model", "string")
SERIAL_NUMBER = P("serialNumber", "Serial number", "string")
HARDWARE_VERSION = P("hardwareVersion", "Hardware version", "string")
SOFTWARE_VERSION = P("softwareVersion", "Software version", "string")
TYPE = P("type", "Type", "number")
STATION_SERIAL_NUMBER = P("stationSerialNumber", "Station serial number", "string")
MAC_ADDRESS = P("macAddress", "MAC address", "string")
LAN_IP_ADDRESS = P("lanIpAddress", "LAN IP address", "string")

DISARMED = 63
"""eufy's guard mode and current mode value for "Disarmed"."""
GUARD_MODE = P("guardMode", "Guard mode", "number", default=DISARMED,
               states={DISARMED: "Disarmed"})
CURRENT_MODE = P("currentMode", "Current mode", "number", default=DISARMED,
                 states={DISARMED: "Disarmed"})

ENABLED = P("enabled", "Enabled", "boolean", writeable=False)
RINGING = P("ringing", "Ringing", "boolean", default=False)
MOTION_DETECTED = P("motionDetected", "Motion detected", "boolean", default=False)
PERSON_DETECTED = P("personDetected", "Person detected", "boolean", default=False)
PERSON_NAME = P("personName", "Person name", "string")
LOCKED = P("locked", "Locked", "boolean", writeable=True)
LIGHT = P("light", "Light", "boolean", writeable=True)
PICTURE = P("picture", "Last camera picture", "object")
RTSP_STREAM = P("rtspStream", "RTSP stream", "boolean")
RTSP_STREAM_URL = P("rtspStreamUrl", "RTSP stream URL", "string")
WIFI_RSSI = P("wifiRssi", "Wi-Fi RSSI", "number", unit="dBm")
WIFI_SIGNAL_LEVEL = P(
    "wifiSignalLevel",
    "Wi-Fi signal level",
    "number",
    states={0: "No signal", 1: "Weak", 2: "Normal", 3: "Strong", 4: "Full"},
)
STATUS_LED = P("statusLed", "Status LED", "boolean", writeable=True)
MOTION_DETECTION = P("motionDetection", "Motion detection", "boolean", writeable=True)
MOTION_DETECTION_SENSITIVITY = P(
    "motionDetectionSensitivity", "Motion detection sensitivity", "number", writeable=True
)
SPEAKER_VOLUME = P("speakerVolume", "Speaker volume", "number", writeable=True)
RINGTONE_VOLUME = P("ringtoneVolume", "Ringtone volume", "number", writeable=True)
CHIME_INDOOR = P("chimeIndoor", "Indoor chime", "boolean", writeable=True)
VIDEO_STREAMING_QUALITY = P(
    "videoStreamingQuality", "Video streaming quality", "number", writeable=True
)
NOTIFICATION_RING = P("notificationRing", "Ring notification", "boolean", writeable=True)
NOTIFICATION_MOTION = P("notificationMotion", "Motion notification", "boolean", writeable=True)
NOTIFICATION_PERSON = P("notificationPerson", "Person notification", "boolean", writeable=True)
LOCATION_ADDRESS = P("locationAddress", "Location", "string")


def define_station(station: Station, *, name: str, model: str, hardware: str, software: str,
                   type_: int, mac_address: str, lan_ip_address: str) -> None:
    """Every key the reference server's station state has (``StationState``): clients such as
    eufy-security-ws-python read each one without a fallback.

    No station of this bridge is an alarm hub, so the guard mode and the current mode are
    "Disarmed", read-only, as eufy reports them for a station that is not armed.
    """
    _define_identity(station, name, model, hardware, software, type_)
    station.define(MAC_ADDRESS, mac_address)
    station.define(LAN_IP_ADDRESS, lan_ip_address)
    station.define(GUARD_MODE, DISARMED)
    station.define(CURRENT_MODE, DISARMED)


def define_device(device: Device, *, name: str, model: str, hardware: str, software: str,
                  type_: int) -> None:
    """Every key the reference server's device state has (``DeviceState``) whatever the device
    type: a door relay has ``enabled`` too, because clients read it from every device."""
    _define_identity(device, name, model, hardware, software, type_)
    device.define(STATION_SERIAL_NUMBER, device.station_serial)
    device.define(ENABLED, True)


def _define_identity(entity: Entity, name: str, model: str, hardware: str, software: str,
                     type_: int) -> None:
    """The properties every station and device has (clients show them; some choose
    behaviour by ``type``)."""
    entity.define(NAME, name)
    entity.define(MODEL, model)
    entity.define(SERIAL_NUMBER, entity.serial)
    entity.define(HARDWARE_VERSION, hardware)
    entity.define(SOFTWARE_VERSION, software)
    entity.define(TYPE, type_)


OTHER_EUFY_NAMES = frozenset(
    {
        "battery", "batteryTemperature", "batteryLow",
        "batteryIsCharging", "lastChargingDays", "lastChargingTotalEvents",
        "lastChargingRecordedEvents", "lastChargingFalseEvents", "batteryUsageLastWeek",
        "state", "soundDetected", "petDetected", "cryingDetected", "sensorOpen",
        "sensorChangeTime", "antitheftDetection", "autoNightvision", "nightvision",
        "soundDetection", "petDetection", "watermark", "lockStatus", "motionSensorPirEvent",
        "pictureUrl", "motionDetectionType", "motionTracking", "soundDetectionType",
        "soundDetectionSensitivity", "microphone", "speaker", "audioRecording", "powerSource",
        "powerWorkingMode", "recordingEndClipMotionStops", "recordingClipLength",
        "recordingRetriggerInterval", "videoRecordingQuality", "videoWdr",
        "lightSettingsEnable", "lightSettingsBrightnessManual", "lightSettingsBrightnessMotion",
        "lightSettingsBrightnessSchedule", "lightSettingsMotionTriggered", "chimeHomebase",
        "chimeHomebaseRingtoneVolume", "chimeHomebaseRingtoneType", "notificationType",
        "rotationSpeed", "notificationPet", "notificationAllOtherMotion",
        "notificationCrying", "notificationAllSound", "notificationIntervalTime",
        "chirpVolume", "chirpTone", "videoHdr",
        "videoDistortionCorrection", "videoRingRecord", "chargingStatus", "snooze",
        "snoozeTime", "snoozeStartTime", "doorbellMotionNotification", "motionDetectionRange",
        "detectionStatistics", "timeFormat", "alarmVolume",
        "alarmTone", "promptVolume", "alarm", "alarmType", "alarmArmed", "alarmDelay",
        "alarmDelayType", "switchModeWithAccessCode", "autoEndAlarm", "turnOffAlarmWithButton",
        "notificationSwitchModeSchedule", "notificationSwitchModeGeofence",
        "notificationSwitchModeApp", "notificationSwitchModeKeypad",
        "notificationStartAlarmDelay", "sdStatus", "sdCapacity", "sdCapacityAvailable",
        "storageInfoEmmc", "storageInfoHdd",
    }
)
"""eufy-security-client property names no backend fills yet.  Setting one of these on a device
that lacks it is ``device_property_not_supported``; a name outside every list is
``device_invalid_property``."""
