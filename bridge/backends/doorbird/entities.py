"""How a DoorBird appears to eufy clients: one station and one doorbell sharing a serial made
from the primary MAC address, and one lock device per relay (paired DoorController relays
included)."""

from __future__ import annotations

from typing import Any

from bridge.driver import Device, Station
from bridge.driver import properties as p
from bridge.driver.model import LIVE_COMMANDS, PropertyMetadata

DOORBELL_TYPE = 5
LOCK_TYPE = 51
PICTURE_TYPE = {"ext": "jpg", "mime": "image/jpeg"}

# sip.cgi settings as eufy properties: (property metadata, sip.cgi parameter, status key)
SIP_PROPERTIES: tuple[tuple[PropertyMetadata, str, str | None], ...] = (
    (p.SPEAKER_VOLUME.with_(key="spk_volume", min=1, max=100, default=70, unit="%"),
     "spk_volume", "SPK_VOLUME"),
    (PropertyMetadata("microphoneVolume", "Microphone volume", "number", key="mic_volume",
                      writeable=True, min=1, max=100, default=33, unit="%"),
     "mic_volume", "MIC_VOLUME"),
    (PropertyMetadata("ringTimeLimit", "Ring time limit", "number", key="ring_time_limit",
                      writeable=True, min=10, max=300, default=300, unit="s"),
     "ring_time_limit", "RING_TIME_LIMIT"),
    (PropertyMetadata("callTimeLimit", "Call time limit", "number", key="call_time_limit",
                      writeable=True, min=30, max=300, default=300, unit="s"),
     "call_time_limit", "CALL_TIME_LIMIT"),
    (PropertyMetadata("dtmf", "DTMF", "boolean", key="dtmf", writeable=True, default=False),
     "dtmf", "DTMF"),
    (PropertyMetadata("noiseCancellation", "Acoustic noise cancellation", "boolean",
                      key="anc", writeable=True, default=True),
     "anc", "ANC"),
    (PropertyMetadata("incomingCalls", "Incoming SIP calls", "boolean",
                      key="incoming_call_enable", writeable=True, default=False),
     "incoming_call_enable", "INCOMING_CALL_ENABLE"),
    (PropertyMetadata("relayPasscode", "Relay passcode (DTMF)", "number",
                      key="relay1_passcode", readable=False, writeable=True, min=0,
                      max=99_999_999),
     "relay1_passcode", None),
)
DOORBELL_BUTTON = PropertyMetadata("doorbellButton", "Last doorbell button", "number",
                                   key="doorbell", min=1)


def sip_value(meta: PropertyMetadata, raw: str | None) -> Any:
    """A ``sip.cgi?action=status`` value as the property's type."""
    if raw is None or raw == "":
        return meta.default
    number = int(raw)
    return bool(number) if meta.type == "boolean" else number


def relay_serial(serial: str, relay: str) -> str:
    return f"{serial}-R{relay.replace('@', '-')}"


def build(info: dict[str, Any], name: str | None, host: str, backend: Any,
          sip: dict[str, str] | None) -> tuple[Station, Device, list[tuple[Device, str]]]:
    """The station, its doorbell and its relay locks from ``info.cgi`` (and ``sip.cgi``)."""
    serial = str(info["PRIMARY_MAC_ADDR"]).replace(":", "").upper()
    model = str(info.get("DEVICE-TYPE") or "DoorBird")
    version = f"{info.get('FIRMWARE', '')} build {info.get('BUILD_NUMBER', '')}".strip()
    shown = name or model

    station = Station(serial, backend=backend, commands=("reboot", "download_image"))
    p.define_station(station, name=shown, model=model, hardware=model, software=version,
                     type_=DOORBELL_TYPE, mac_address=serial, lan_ip_address=host)

    bell = Device(serial, backend=backend, station_serial=serial, commands=LIVE_COMMANDS)
    p.define_device(bell, name=shown, model=model, hardware=model, software=version,
                    type_=DOORBELL_TYPE)
    bell.define(p.RINGING, False)
    bell.define(p.MOTION_DETECTED, False)
    bell.define(DOORBELL_BUTTON, 1)
    bell.define(p.LIGHT.with_(key="light-on"), False)
    # the station's RTSP needs a credential in the URL: none is handed to clients
    bell.define(p.RTSP_STREAM, False)
    bell.define(p.RTSP_STREAM_URL, "")
    bell.define(p.PICTURE, None)
    if sip is not None:
        for meta, _, status_key in SIP_PROPERTIES:
            value = None if status_key is None else sip_value(meta, sip.get(status_key))
            bell.define(meta, value)

    locks = []
    for relay in info.get("RELAYS") or ["1"]:
        relay = str(relay)
        paired = "@" in relay
        lock = Device(relay_serial(serial, relay), backend=backend, station_serial=serial,
                      commands=("unlock", "open"))
        relay_model = "DoorBird DoorController relay" if paired else f"{model} relay"
        p.define_device(lock, name=f"{shown} relay {relay}", model=relay_model,
                        hardware=relay_model, software=version, type_=LOCK_TYPE)
        lock.define(p.LOCKED.with_(key=f"open-door:{relay}"), True)
        locks.append((lock, relay))
    return station, bell, locks
