"""Every setting of a real SkyBell doorbell as a eufy property: the bridge against the SkyBell
simulator (which holds the real cloud's settings object), over real sockets.  Each property has
the metadata clients build entities from, each writeable one reaches the simulated cloud as
only the changed setting, and a cloud that lacks a setting has no such property."""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from typing import Any

import pytest

from bridge.backends.skybell.clips import clip_path
from tests import test_skybell
from tests.test_skybell import BACK, FRONT, free_port

make_rig, sims = test_skybell.make_rig, test_skybell.sims  # the SkyBell rig's fixtures

LEVELS = {"0": "Low", "1": "Medium", "2": "High"}

# name: (type, writeable, key, the metadata's range or states)
EXPECTED: dict[str, tuple[str, bool, str, dict[str, Any]]] = {
    "notificationRing": ("boolean", True, "button_pressed", {}),
    "motionDetection": ("boolean", True, "motion_detection", {}),
    "motionDetectionDebug": ("boolean", True, "debug_motion_detect", {}),
    "notificationMotion": ("boolean", True, "basic_motion.motion_notify", {}),
    "recordingMotion": ("boolean", True, "basic_motion.motion_record", {}),
    "notificationPerson": ("boolean", True, "basic_motion.hbd_notify", {}),
    "recordingPerson": ("boolean", True, "basic_motion.hbd_record", {}),
    "notificationFace": ("boolean", True, "basic_motion.fd_notify", {}),
    "recordingFace": ("boolean", True, "basic_motion.fd_record", {}),
    "motionDetectionSensitivity": ("number", True, "motion_sensitivity",
                                   {"min": 0, "max": 1000}),
    "pirSensitivity": ("number", True, "pir_sensitivity", {"min": 0, "max": 1000}),
    "personDetectionSensitivity": ("number", True, "hmbd_sensitivity",
                                   {"min": -1, "max": 1000}),
    "faceDetectionSensitivity": ("number", True, "fd_sensitivity", {"min": -1, "max": 1000}),
    "faceRecognitionSensitivity": ("number", True, "fr_sensitivity", {"min": 0, "max": 1000}),
    "statusLed": ("boolean", True, "led_color", {}),
    "ledColor": ("string", True, "led_color", {"min": 7, "max": 7}),
    "ledBrightness": ("number", True, "brightness", {"min": 0, "max": 999}),
    "ledControl": ("string", False, "led_control", {}),
    "chimeIndoor": ("boolean", True, "indoor_chime", {}),
    "chimeDigital": ("boolean", True, "digital_chime", {}),
    "chimeOutdoor": ("boolean", True, "outdoor_chime", {}),
    "chimeSkyBell": ("boolean", True, "skybell_chime", {}),
    "ringtoneVolume": ("number", True, "outdoor_chime_volume", {"states": LEVELS}),
    "speakerVolume": ("number", True, "speaker_volume", {"states": LEVELS}),
    "chimeTone": ("number", True, "chime_file", {}),
    "videoStreamingQuality": ("number", True, "image_quality", {"states": {
        "0": "480p", "1": "720p low", "2": "720p high", "3": "1080p"}}),
    "videoRotation": ("number", True, "video_rotation", {"states": {
        "0": "0°", "1": "90°", "2": "180°", "3": "270°"}}),
    "timeZone": ("string", True, "time_zone", {"min": 1, "max": 64}),
    "locationLatitude": ("number", True, "time_zone_info.mapLat", {"min": -90, "max": 90}),
    "locationLongitude": ("number", True, "time_zone_info.mapLong",
                          {"min": -180, "max": 180}),
    "locationAddress": ("string", True, "time_zone_info.place", {"max": 128}),
}

# name, a new value, and the cloud's setting after writing it: (path, value)
ROUND_TRIPS: list[tuple[str, Any, tuple[str, ...], Any]] = [
    ("notificationRing", False, ("button_pressed",), False),
    ("motionDetection", False, ("motion_detection",), False),
    ("motionDetectionDebug", True, ("debug_motion_detect",), True),
    ("notificationMotion", False, ("basic_motion", "motion_notify"), False),
    ("recordingMotion", False, ("basic_motion", "motion_record"), False),
    ("notificationPerson", False, ("basic_motion", "hbd_notify"), False),
    ("recordingPerson", False, ("basic_motion", "hbd_record"), False),
    ("notificationFace", False, ("basic_motion", "fd_notify"), False),
    ("recordingFace", False, ("basic_motion", "fd_record"), False),
    ("motionDetectionSensitivity", 1000, ("motion_sensitivity",), 1000),
    ("pirSensitivity", 2, ("pir_sensitivity",), 2),
    ("personDetectionSensitivity", 700, ("hmbd_sensitivity",), 700),
    ("faceDetectionSensitivity", 300, ("fd_sensitivity",), 300),
    ("faceRecognitionSensitivity", 900, ("fr_sensitivity",), 900),
    ("statusLed", False, ("led_color",), ""),
    ("ledColor", "#FF00FF", ("led_color",), "#FF00FF"),
    ("ledBrightness", 500, ("brightness",), 500),
    ("chimeIndoor", False, ("indoor_chime",), False),
    ("chimeDigital", True, ("digital_chime",), True),
    ("chimeOutdoor", False, ("outdoor_chime",), False),
    ("chimeSkyBell", False, ("skybell_chime",), False),
    ("ringtoneVolume", 2, ("outdoor_chime_volume",), 2),
    ("speakerVolume", 1, ("speaker_volume",), 1),
    ("chimeTone", 9, ("chime_file",), "home.wav"),
    ("chimeTone", -1, ("chime_file",), ""),
    ("videoStreamingQuality", 3, ("image_quality",), 3),
    ("videoRotation", 2, ("video_rotation",), 2),
    ("timeZone", "CET-1CEST,M3.5.0,M10.5.0/3", ("time_zone",), "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("locationLatitude", 48.8584, ("time_zone_info", "mapLat"), 48.8584),
    ("locationLongitude", 2.2945, ("time_zone_info", "mapLong"), 2.2945),
    ("locationAddress", "Paris", ("time_zone_info", "place"), "Paris"),
]


def at(settings: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        settings = settings[part]
    return settings


def spy_on_updates(rig) -> list[dict[str, Any]]:
    """Every settings update the backend sends, as it goes out (still sent for real)."""
    sent: list[dict[str, Any]] = []
    client = rig.backend.client
    original = client.update_settings

    async def update_settings(device_id: str, changes: dict[str, Any]) -> Any:
        sent.append(copy.deepcopy(changes))
        return await original(device_id, changes)

    client.update_settings = update_settings
    return sent


async def test_every_setting_of_a_real_doorbell_is_a_property_with_its_metadata(make_rig):
    rig = await make_rig()
    client = await rig.client()
    meta = (await client.ok("device.get_properties_metadata", serialNumber=FRONT))[
        "properties"]
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    for name, (kind, writeable, key, extra) in EXPECTED.items():
        assert name in meta and name in props, name
        got = meta[name]
        assert (got["type"], got["writeable"], got["readable"], got["key"]) == \
            (kind, writeable, True, key), name
        assert {k: got[k] for k in extra} == extra, name
    assert meta["chimeTone"]["states"]["-1"] == "Doorbell default"
    assert meta["chimeTone"]["states"]["9"] == "home.wav"
    settings = rig.cloud.devices[rig.device_id(FRONT)].settings
    assert props["statusLed"] is True and props["ledColor"] == settings["led_color"]
    assert props["ledControl"] == "Normal"
    assert props["personDetectionSensitivity"] == -1  # 0xFFFFFFFF: as motion
    assert props["faceDetectionSensitivity"] == -1
    assert props["pirSensitivity"] == settings["pir_sensitivity"]
    assert props["notificationFace"] is settings["basic_motion"]["fd_notify"]
    assert props["locationAddress"] == settings["time_zone_info"]["place"]
    assert props["locationLatitude"] == settings["time_zone_info"]["mapLat"]


@pytest.mark.parametrize(("name", "value", "path", "stored"), ROUND_TRIPS,
                         ids=[f"{r[0]}={r[1]}" for r in ROUND_TRIPS])
async def test_each_writeable_property_reaches_the_cloud_as_only_that_setting(
        make_rig, name, value, path, stored):
    rig = await make_rig(poll=60)
    client = await rig.client()
    device = rig.cloud.devices[rig.device_id(FRONT)]
    before = copy.deepcopy(device.settings)
    assert at(before, path) != stored  # the write really changes something
    sent = spy_on_updates(rig)
    await client.ok("device.set_property", serialNumber=FRONT, name=name, value=value)
    assert at(device.settings, path) == stored
    changed = {k for k in device.settings if device.settings[k] != before[k]}
    assert changed == {path[0]}
    assert [set(update) for update in sent] == [{path[0]}]
    if len(path) == 2:  # the other fields of the object are as they were
        assert {k: v for k, v in device.settings[path[0]].items() if k != path[1]} == \
            {k: v for k, v in before[path[0]].items() if k != path[1]}
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert props[name] == value


async def test_the_led_turns_off_with_an_empty_colour_and_on_again_in_its_last_colour(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    device = rig.cloud.devices[rig.device_id(FRONT)]
    await client.ok("device.set_property", serialNumber=FRONT, name="ledColor", value="#FF00FF")
    await client.ok("device.set_property", serialNumber=FRONT, name="statusLed", value=False)
    assert device.settings["led_color"] == ""
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert (props["statusLed"], props["ledColor"]) == (False, "#FF00FF")
    await client.ok("device.set_property", serialNumber=FRONT, name="statusLed", value=True)
    assert device.settings["led_color"] == "#FF00FF"
    # a colour written while the LED is off turns it on in that colour
    await client.ok("device.set_property", serialNumber=FRONT, name="statusLed", value=False)
    await client.ok("device.set_property", serialNumber=FRONT, name="ledColor", value="#0000FF")
    assert device.settings["led_color"] == "#0000FF"
    assert (await client.event("property changed", name="statusLed", value=True))[
        "serialNumber"] == FRONT


async def test_the_last_led_colour_survives_a_restart_while_the_led_is_off(make_rig):
    first = await make_rig(poll=60)
    client = await first.client()
    await client.ok("device.set_property", serialNumber=FRONT, name="ledColor", value="#123456")
    await client.ok("device.set_property", serialNumber=FRONT, name="statusLed", value=False)
    await first.backend.stop()
    second = await make_rig(poll=60, sim=first.sim, data_dir=first.data_dir)
    later = await second.client()
    props = (await later.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert (props["statusLed"], props["ledColor"]) == (False, "#123456")
    await later.ok("device.set_property", serialNumber=FRONT, name="statusLed", value=True)
    assert first.cloud.devices[first.device_id(FRONT)].settings["led_color"] == "#123456"


async def test_a_change_made_elsewhere_shows_as_property_changes(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    device = rig.cloud.devices[rig.device_id(FRONT)]
    device.settings["basic_motion"]["hbd_record"] = False
    device.settings["fd_sensitivity"] = 250
    device.settings["led_color"] = ""
    await client.ok("driver.poll_refresh")
    assert (await client.event("property changed", name="recordingPerson"))["value"] is False
    assert (await client.event("property changed", name="faceDetectionSensitivity"))[
        "value"] == 250
    assert (await client.event("property changed", name="statusLed"))["value"] is False


async def test_settings_a_doorbell_lacks_are_no_properties(make_rig, sims):
    sim = await sims(udp_port=free_port(socket.SOCK_DGRAM))
    front = next(d for d in sim.cloud.devices.values() if d.serial == FRONT)
    for key in ("pir_sensitivity", "fd_sensitivity", "fr_sensitivity", "led_control",
                "time_zone_info", "skybell_chime", "button_pressed"):
        del front.settings[key]
    front.settings["speaker_volume"] = "loud"  # not what the setting holds
    front.settings["hmbd_sensitivity"] = None  # the seed: not set follows motion
    front.settings["image_quality"] = None
    front.settings["chime_file"] = "unheard-of.wav"
    rig = await make_rig(sim=sim)
    client = await rig.client()
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    meta = (await client.ok("device.get_properties_metadata", serialNumber=FRONT))[
        "properties"]
    gone = {"pirSensitivity", "faceDetectionSensitivity", "faceRecognitionSensitivity",
            "ledControl", "locationLatitude", "locationLongitude", "locationAddress",
            "chimeSkyBell", "notificationRing", "speakerVolume", "chimeTone",
            "videoStreamingQuality"}
    assert gone.isdisjoint(props) and gone.isdisjoint(meta)
    assert props["personDetectionSensitivity"] == -1
    assert props["motionDetectionSensitivity"] == 50 and props["statusLed"] is True
    assert await client.error("device.set_property", serialNumber=FRONT,
                              name="pirSensitivity", value=3) == \
        "device_property_not_supported"
    back = (await client.ok("device.get_properties", serialNumber=BACK))["properties"]
    assert EXPECTED.keys() <= back.keys()


@pytest.mark.parametrize(("name", "value"), [("personDetectionSensitivity", -2),
                                             ("faceRecognitionSensitivity", 1001),
                                             ("locationLatitude", 91),
                                             ("statusLed", "on"), ("chimeTone", 14),
                                             ("timeZone", "")])
async def test_values_outside_a_property_are_refused_before_the_cloud(make_rig, name, value):
    rig = await make_rig(poll=60)
    client = await rig.client()
    sent = spy_on_updates(rig)
    assert await client.error("device.set_property", serialNumber=FRONT, name=name,
                              value=value) == "device_invalid_property_value"
    assert sent == []


async def test_read_only_settings_cannot_be_written(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    assert await client.error("device.set_property", serialNumber=FRONT, name="ledControl",
                              value="Normal") == "device_property_readonly"


async def test_event_records_keep_each_clips_reference(make_rig):
    rig = await make_rig(poll=60, lan=False)
    client = await rig.client()
    front = rig.device_id(FRONT)
    await rig.sim_post(f"/_sim/devices/{front}/ring")
    activity = rig.cloud.activities[-1]
    records: list[dict[str, Any]] = []
    for _ in range(200):  # the clip is uploaded a moment after the ring
        records = (await client.ok("driver.get_video_events"))["events"]
        if records and records[0]["video_ready"]:
            break
        await asyncio.sleep(0.05)
    (record,) = records
    assert record["activity_id"] == activity["activity_id"]
    assert record["cloud_path"] == record["video_url"] == \
        f"/activity/{activity['activity_id']}/video"
    today = time.strftime("%Y%m%d", time.gmtime())
    await client.ok("station.database_query_local", serialNumber=FRONT, startDate=today,
                    endDate=today)
    (local,) = (await client.event("database query local"))["data"]
    assert local["cloud_path"] == record["cloud_path"]


def test_clip_references_are_only_paths_inside_the_api():
    assert clip_path({"video_url": "/activity/abc-1/video"}) == "/activity/abc-1/video"
    for hostile in ("https://evil.example/x", "//evil.example/x", "/activity/../user",
                    "/activity/a?token=1", None, 7, ""):
        assert clip_path({"video_url": hostile}) == "", hostile



async def test_a_cloud_that_answers_an_update_with_nothing_still_gets_whole_objects(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    cloud = rig.cloud
    accept = cloud.update_settings

    def answer_nothing(device, changes):  # the seed's example answer: data {}
        accept(device, changes)
        return {}

    cloud.update_settings = answer_nothing
    sent = spy_on_updates(rig)
    await client.ok("device.set_property", serialNumber=FRONT, name="notificationFace",
                    value=False)
    await client.ok("device.set_property", serialNumber=FRONT, name="recordingFace",
                    value=False)
    assert sent[1]["basic_motion"]["fd_notify"] is False  # the first write was kept
    assert sent[1]["basic_motion"]["fd_record"] is False
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert (props["notificationFace"], props["recordingFace"]) == (False, False)
