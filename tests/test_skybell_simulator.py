"""The SkyBell cloud simulator behaves like the cloud API of the documentation."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import aiohttp
import pytest
from aiohttp import web

from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from bridge.simulators.skybell.cloud import TRIGGER_FAILURE_LIMIT
from bridge.webapp import serve


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def sim():
    simulator = SkyBellSimulator(CloudConfig(devices=3, udp_port=free_udp_port(),
                                             token_seconds=3600))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def api(sim):
    async with aiohttp.ClientSession(headers={"x-skybell-user-api-key": sim.cloud.api_key}) \
            as http:
        async def call(method: str, path: str, **kwargs):
            async with http.request(method, f"{sim.url}/api/v5{path}", **kwargs) as response:
                return response.status, await response.json()
        yield call


async def test_the_envelope_and_health(sim):
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/api/v5/health") as r:
        body = await r.json()
    assert set(body) == {"error", "message", "data"} and body["error"] is False


async def test_login_refresh_logout_and_expired_tokens(sim):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/api/v5/login/", json={
                "username": sim.config.email, "password": sim.config.password}) as r:
            result = (await r.json())["data"]["AuthenticationResult"]
        assert result["ExpiresIn"] == 3600 and result["TokenType"] == "Bearer"
        headers = {"Authorization": f"Bearer {result['IdToken']}", "x-skybell-app": "test"}
        async with http.get(f"{sim.url}/api/v5/user/", headers=headers) as r:
            assert r.status == 200
        async with http.get(f"{sim.url}/api/v5/user/", headers={
                "Authorization": headers["Authorization"]}) as r:
            assert r.status == 400  # a JWT without x-skybell-app
        sim.cloud.expire_tokens()
        async with http.get(f"{sim.url}/api/v5/user/", headers=headers) as r:
            assert r.status == 401
        async with http.put(f"{sim.url}/api/v5/token/", json={
                "refresh_token": result["RefreshToken"]}) as r:
            fresh = (await r.json())["data"]
        headers["Authorization"] = f"Bearer {fresh['IdToken']}"
        async with http.get(f"{sim.url}/api/v5/logout/", headers=headers) as r:
            assert r.status == 200
        async with http.get(f"{sim.url}/api/v5/user/", headers=headers) as r:
            assert r.status == 401  # logout revokes every token
        async with http.put(f"{sim.url}/api/v5/token/", json={
                "refresh_token": result["RefreshToken"]}) as r:
            assert r.status == 401
        async with http.post(f"{sim.url}/api/v5/login/", json={
                "username": sim.config.email, "password": "nope"}) as r:
            assert r.status == 401


async def test_devices_with_pagination_and_details(api, sim):
    status, page = await api("GET", "/devices/", params={"limit": 2, "offset": 1})
    assert status == 200 and page["data"]["count"] == 3 and len(page["data"]["rows"]) == 2
    device_id = page["data"]["rows"][0]["device_id"]
    _, detail = await api("GET", f"/devices/{device_id}/")
    data = detail["data"]
    assert data["telemetry"]["ip_address"] == "127.0.0.2"
    assert data["settings"]["image_quality"] == 0
    assert data["device_settings"]["serial_number"] == data["serial"]


async def test_a_device_holds_the_whole_settings_object_of_a_real_doorbell(api, sim):
    device_id = next(iter(sim.cloud.devices))
    _, detail = await api("GET", f"/devices/{device_id}/")
    settings = detail["data"]["settings"]
    assert {"basic_motion", "time_zone_info", "led_control", "tones", "pir_sensitivity",
            "fd_sensitivity", "fr_sensitivity", "hmbd_sensitivity", "button_pressed",
            "indoor_chime", "outdoor_chime", "digital_chime", "speaker_volume",
            "image_quality", "video_rotation", "led_color"} <= set(settings)
    assert set(settings["basic_motion"]) == {"motion_notify", "motion_record", "fd_notify",
                                             "fd_record", "hbd_notify", "hbd_record"}
    assert set(settings["time_zone_info"]) == {"mapLat", "mapLong", "place"}
    assert settings["led_control"] == "Normal" and settings["device_id"] == device_id
    assert detail["data"]["basic_motion"] == settings["basic_motion"]


@pytest.mark.parametrize(("body", "message"), [
    ({"image_quality": 4}, "image_quality"), ({"led_color": "green"}, "led_color"),
    ({"motion_sensitivity": 1001}, "motion_sensitivity"), ({"chime_file": "6.wav"}, "chime"),
    ({"outdoor_chime": 1}, "outdoor_chime"), ({"no_such": 1}, "not a setting"), ({}, "at least"),
    ({"hmbd_sensitivity": -2}, "hmbd"), ({"pir_sensitivity": "high"}, "pir_sensitivity"),
    ({"basic_motion": {"fd_notify": 1}}, "fd_notify"), ({"basic_motion": {"x": True}}, "x"),
    ({"time_zone_info": {"mapLat": 91.0}}, "mapLat"),
    ({"time_zone_info": {"place": 3}}, "place"), ({"led_control": "Disco"}, "led_control"),
    ({"video_rotation": 7}, "video_rotation"), ({"button_pressed": "yes"}, "button_pressed"),
])
async def test_a_refused_setting_answers_400_with_the_reason_and_changes_nothing(
        api, sim, body, message):
    device = next(iter(sim.cloud.devices.values()))
    before = json.loads(json.dumps(device.settings))
    with_a_valid_change = {"speaker_volume": 2, **body} if body else body
    status, answer = await api("POST", f"/devices/{device.device_id}/settings/",
                               json=with_a_valid_change)
    assert status == 400 and message in answer["message"]
    assert answer["error"] is True and answer["data"] == {}
    assert device.settings == before


async def test_a_settings_update_changes_only_the_keys_sent_and_answers_the_whole_object(
        api, sim):
    device_id = next(iter(sim.cloud.devices))
    _, before = await api("GET", f"/devices/{device_id}/")
    changes = {"hmbd_sensitivity": 4294967295, "image_quality": 3, "led_color": "#FF00FF",
               "pir_sensitivity": 1000, "motion_sensitivity": 1000, "fr_sensitivity": 0,
               "video_rotation": 2, "chime_file": "home.wav", "button_pressed": False,
               "basic_motion": {"hbd_record": False},
               "time_zone_info": {"place": "Springfield"}}
    status, answer = await api("POST", f"/devices/{device_id}/settings/", json=changes)
    expected = {**before["data"]["settings"], **changes,
                "basic_motion": {**before["data"]["settings"]["basic_motion"],
                                 "hbd_record": False},
                "time_zone_info": {**before["data"]["settings"]["time_zone_info"],
                                   "place": "Springfield"}}
    assert status == 200 and answer["data"] == expected
    _, after = await api("GET", f"/devices/{device_id}")
    assert after["data"]["settings"] == expected


async def test_an_empty_led_color_turns_the_led_off(api, sim):
    device_id = next(iter(sim.cloud.devices))
    status, answer = await api("POST", f"/devices/{device_id}/settings/",
                               json={"led_color": ""})
    assert status == 200 and answer["data"]["led_color"] == ""
    _, listed = await api("GET", "/devices/")
    assert listed["data"]["rows"][0]["settings"]["led_color"] == ""


async def test_the_user_has_an_account_id(api, sim):
    _, user = await api("GET", "/user/")
    assert user["data"]["account_id"] == sim.cloud.account_id and "user_id" not in user["data"]


async def test_devices_carry_telemetry_and_connection_times(api, sim):
    _, page = await api("GET", "/devices/")
    row = page["data"]["rows"][0]
    assert {"essid", "ip_address", "last_seen", "link_quality", "signal_level"} \
        <= set(row["telemetry"])
    assert row["last_connected"] > row["last_disconnected"]
    assert row["settings"]["basic_motion"] and row["device_settings"]["serial_number"]


async def test_snapshot_reboot_stream_and_offline_devices(api, sim):
    device_id = next(iter(sim.cloud.devices))
    _, snap = await api("GET", f"/devices/{device_id}/snapshot/")
    assert base64.b64decode(snap["data"]["preview"])[:2] == b"\xff\xd8"
    status, stream = await api("POST", f"/devices/{device_id}/videostream/")
    assert status == 201 and stream["data"]["signedWSS"].startswith(
        sim.url.replace("http", "ws"))
    assert {"ice", "channelARN", "credentials", "endpoints", "signed", "signedHTTPS"} \
        <= set(stream["data"])
    assert [json.loads(s)["host"] for s in stream["data"]["signed"]] == [
        e["ResourceEndpoint"] for e in stream["data"]["endpoints"]]
    _, views = await api("GET", "/activity", params={"type": "lstream"})
    assert views["data"]["count"] == 1 and views["data"]["rows"][0]["device_id"] == device_id
    assert (await api("DELETE", f"/devices/{device_id}/videostream/"))[1]["data"] is False
    sim.cloud.set_online(sim.cloud.devices[device_id], False)
    for method, path in [("GET", "snapshot"), ("POST", "reboot"), ("POST", "videostream")]:
        status, _ = await api(method, f"/devices/{device_id}/{path}/")
        assert status == 599
    status, _ = await api("POST", f"/devices/{device_id}/settings/", json={"brightness": 2})
    assert status == 200  # settings wait in the cloud for the device
    _, detail = await api("GET", f"/devices/{device_id}/")
    assert detail["data"]["last_disconnected"] > detail["data"]["last_connected"]


async def test_activities_filters_pagination_previews_and_videos(api, sim):
    devices = list(sim.cloud.devices.values())
    for device, kind in [(devices[0], "doorbell"), (devices[0], "motion"),
                         (devices[1], "doorbell")]:
        sim.cloud.event(device, kind)
    _, everything = await api("GET", "/activity")
    assert everything["data"]["count"] == 3 and everything["data"]["rows"][0]["image"]
    _, light = await api("GET", "/activities/", params={"nopreviews": "true",
                                                        "type": "doorbell"})
    assert light["data"]["count"] == 2 and light["data"]["rows"][0]["image"] is None
    _, mine = await api("GET", "/activity", params={"device_id": devices[0].device_id,
                                                    "limit": 1, "offset": 1})
    assert mine["data"]["count"] == 2 and mine["data"]["rows"][0]["event_type"] == "doorbell"
    _, later = await api("GET", "/activity", params={"start": int(time.time() * 1000) + 5000})
    assert later["data"]["count"] == 0
    activity = everything["data"]["rows"][0]["activity_id"]
    async with asyncio.timeout(20):  # the clip is uploaded after the event
        while not (await api("GET", "/activity"))[1]["data"]["rows"][0]["video_ready"]:
            await asyncio.sleep(0.05)
    row = (await api("GET", "/activity"))[1]["data"]["rows"][0]
    assert row["video_url"] == f"/activity/{activity}/video" and row["video_size"] > 0
    assert row["video_ready_time"]
    _, video = await api("GET", row["video_url"])
    async with aiohttp.ClientSession() as http, http.get(video["data"]["download_url"]) as r:
        clip = await r.read()
    assert r.status == 200 and clip[4:8] == b"ftyp"
    assert (await api("DELETE", f"/activity/{activity}"))[0] == 200
    day = everything["data"]["rows"][1]["date"]
    assert (await api("DELETE", "/activities/", params={"day": day}))[0] == 200
    assert (await api("GET", "/activity"))[1]["data"]["count"] == 0


async def test_triggers_call_webhooks_and_give_up_after_25_failures(api, sim):
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.headers["x-test"] == "secret"
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner, port = await serve(app, "127.0.0.1", 0)
    device = next(iter(sim.cloud.devices.values()))
    _, created = await api("POST", f"/devices/{device.device_id}/triggers", json={
        "type": "webhook", "url": f"http://127.0.0.1:{port}/hook", "method": "post",
        "header_name": "x-test", "header_value": "secret",
        "events": ["doorbell", "motion", "availability", "telemetry", "vready"]})
    trigger_id = created["data"]["trigger_id"]
    sim.cloud.event(device, "doorbell")
    sim.cloud.set_online(device, False)
    async with asyncio.timeout(20):
        while len(received) < 3:
            await asyncio.sleep(0.02)
    kinds = [r["event"] for r in received]
    assert kinds[:2] == ["doorbell", "availability"] and "vready" in kinds
    ring = received[0]
    assert set(ring) == {"event", "date_time", "device_id", "name", "preview", "activity_id"}
    await runner.cleanup()  # the webhook endpoint is gone from now on
    for _ in range(TRIGGER_FAILURE_LIMIT):
        sim.cloud.fire(device, "motion", {})
    async with asyncio.timeout(5):
        while sim.cloud.triggers[trigger_id].enabled:
            await asyncio.sleep(0.05)
    _, listed = await api("GET", f"/devices/{device.device_id}/triggers")
    assert listed["data"][0]["enabled"] is False and "disabled_reason" in listed["data"][0]
    assert (await api("DELETE", f"/devices/{device.device_id}/triggers/{trigger_id}"))[0] \
        == 200


async def test_lan_packets_come_from_each_doorbell_address(sim):
    from bridge.backends.skybell import lan

    got: list[tuple[bytes, str]] = []

    class Collector(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            got.append((data, addr[0]))

    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        Collector, local_addr=("127.0.0.1", sim.config.udp_port))
    devices = list(sim.cloud.devices.values())
    sim.cloud.event(devices[1], "doorbell")
    sim.cloud.event(devices[2], "motion")
    await asyncio.sleep(0.2)
    transport.close()
    assert sorted(got) == sorted([(lan.BUTTON_PRESSED, "127.0.0.2"), (lan.MOTION, "127.0.0.3")])


async def test_tones_and_locations(api, sim):
    device = next(iter(sim.cloud.devices.values()))
    assert (await api("POST", f"/devices/{device.device_id}/tones/test",
                      json={"file_name": "home.wav"}))[0] == 200
    assert device.tones_played == ["home.wav"]
    assert (await api("POST", f"/devices/{device.device_id}/tones/test",
                      json={"file_name": "x.wav"}))[0] == 400
    assert (await api("POST", f"/devices/{device.device_id}/tones",
                      json={"tone_type": "doorbell", "tone_file": "harp_riff.mp3"}))[0] == 200
    _, detail = await api("GET", f"/devices/{device.device_id}")
    assert detail["data"]["settings"]["tones"]["button"]["file"] == "harp_riff.mp3"
    assert detail["data"]["tones"]["button"]["file"] == "harp_riff.mp3"
    assert (await api("POST", f"/devices/{device.device_id}/tones",
                      json={"tone_type": "siren", "tone_file": "x.mp3"}))[0] == 400
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/api/v5/tones/chime") as r:
        assert r.status == 200  # no authentication needed
    assert (await api("POST", "/locations", json={"building_information": {}}))[0] == 400
    status, created = await api("POST", "/locations", json={
        "building_information": {"name": "Home"}, "location": {}})
    assert status == 200 and created["data"]["id"]
    assert (await api("GET", "/locations"))[1]["data"]["count"] == 1


async def test_an_unknown_api_key_is_refused(sim):
    async with aiohttp.ClientSession(headers={"x-skybell-user-api-key": "nope"}) as http, \
            http.get(f"{sim.url}/api/v5/devices/") as r:
        assert r.status == 401


async def test_the_simulator_runs_alone_from_the_command_line():
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "simulate", "skybell", "--port", str(port),
        "--api-key", "key-123", "--devices", "3", "--udp-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert b"simulator ready" in await asyncio.wait_for(process.stdout.readline(), 20)
        async with aiohttp.ClientSession(headers={"x-skybell-user-api-key": "key-123"}) as \
                http, http.get(f"http://127.0.0.1:{port}/api/v5/devices/") as r:
            assert (await r.json())["data"]["count"] == 3
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0
