"""The SkyBell backend against the SkyBell cloud simulator, through the bridge, over real
sockets: discovery, settings, the three event sources, tokens, trouble and restarts."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest

from bridge.backends.skybell import SkyBellBackend, cloud_settings
from bridge.backends.skybell.client import SkyBellClient
from bridge.settings import SkyBellSettings
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from bridge.storage import StateStore
from tests.wsclient import PATIENCE, Client

FRONT, BACK = "A3BAB00001", "A3BAB00002"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rig:
    def __init__(self, sim: SkyBellSimulator, backend: SkyBellBackend, bridge, data_dir):
        self.sim, self.backend, self.bridge, self.data_dir = sim, backend, bridge, data_dir
        self.clients: list[Client] = []

    @property
    def cloud(self):
        return self.sim.cloud

    def device_id(self, serial: str) -> str:
        return next(d.device_id for d in self.cloud.devices.values() if d.serial == serial)

    async def client(self, schema: int = 21) -> Client:
        client = await Client.connect(self.bridge.url, schema=schema, listen=True)
        self.clients.append(client)
        return client

    async def sim_post(self, path: str) -> None:
        async with aiohttp.ClientSession() as http, http.post(self.sim.url + path) as response:
            assert response.status == 200


@pytest.fixture
async def sims():
    started = []

    async def start(**options) -> SkyBellSimulator:
        sim = SkyBellSimulator(CloudConfig(**options))
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
def make_rig(bridge_factory, sims, tmp_path):
    async def make(*, login=False, lan=True, webhooks=False, poll=0.3, password=None,
                   sim=None, data_dir=None, subscriber=None, **sim_options) -> Rig:
        udp_port = free_port(socket.SOCK_DGRAM) if lan else 0
        sim = sim or await sims(udp_port=udp_port or free_port(socket.SOCK_DGRAM),
                                **sim_options)
        credentials = ({"email": sim.config.email,
                        "password": password or sim.config.password}
                       if login else {"api_key": sim.cloud.api_key})
        webhook = {}
        if webhooks:
            port = free_port()
            webhook = {"webhook_url": f"http://127.0.0.1:{port}/hooks/skybell",
                       "webhook_listen": f"127.0.0.1:{port}"}
        settings = SkyBellSettings(base_url=sim.url, poll_interval=poll,
                                   udp_port=sim.config.udp_port if lan else 0,
                                   udp_listen="127.0.0.1", **credentials, **webhook)
        data_dir = data_dir or tmp_path / "data"
        store = StateStore(data_dir)
        backend = SkyBellBackend(settings, data_dir=data_dir)
        backend.client = SkyBellClient(
            settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            email=settings.email,
            password=settings.password.get_secret_value() if settings.password else None,
            store=store, state_name=backend._state_name, backoff=0.05, timeout=5)
        bridge = await bridge_factory([backend], subscriber=subscriber)
        return Rig(sim, backend, bridge, data_dir)

    return make


async def test_discovery(make_rig):
    rig = await make_rig()
    client = await rig.client()
    assert client.state["stations"] == [FRONT, BACK]
    assert client.state["devices"] == [FRONT, BACK]
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert (props["name"], props["model"], props["type"]) == ("Front Door", "SB_TRIM2_0001", 5)
    assert (props["hardwareVersion"], props["softwareVersion"]) == ("Ver A", "0.5.11")
    assert props["stationSerialNumber"] == FRONT
    assert props["wifiRssi"] < 0 and 0 <= props["wifiSignalLevel"] <= 4
    assert props["videoStreamingQuality"] == 0 and props["chimeTone"] == 1
    assert props["personDetectionSensitivity"] == -1
    station = (await client.ok("station.get_properties", serialNumber=BACK))["properties"]
    assert station["name"] == "Back Door"


async def test_metadata_has_the_real_ranges_and_enums(make_rig):
    rig = await make_rig()
    client = await rig.client()
    meta = (await client.ok("device.get_properties_metadata", serialNumber=FRONT))[
        "properties"]
    assert meta["videoStreamingQuality"]["states"] == {"0": "480p", "1": "720p low",
                                                       "2": "720p high", "3": "1080p"}
    assert meta["ringtoneVolume"]["states"] == {"0": "Low", "1": "Medium", "2": "High"}
    assert meta["chimeTone"]["states"]["0"] == "user.wav"
    assert (meta["motionDetectionSensitivity"]["min"],
            meta["motionDetectionSensitivity"]["max"]) == (0, 1000)
    assert meta["chimeIndoor"]["writeable"] is True
    assert meta["wifiRssi"]["writeable"] is False


async def test_set_property_sends_only_that_setting(make_rig):
    rig = await make_rig()
    client = await rig.client()
    device = rig.cloud.devices[rig.device_id(FRONT)]
    before = dict(device.settings)
    await client.ok("device.set_property", serialNumber=FRONT, name="videoStreamingQuality",
                    value=3)
    assert (await client.event("property changed", name="videoStreamingQuality"))[
        "value"] == 3
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeTone", value=9)
    await client.ok("device.set_property", serialNumber=FRONT,
                    name="personDetectionSensitivity", value=-1)
    await client.ok("device.set_property", serialNumber=FRONT, name="ledColor",
                    value="#FF00FF")
    changed = {k for k in device.settings if device.settings[k] != before[k]}
    assert changed == {"image_quality", "chime_file", "led_color"}
    assert device.settings["chime_file"] == "home.wav"
    assert device.settings["hmbd_sensitivity"] == 0xFFFFFFFF


@pytest.mark.parametrize(("name", "value"), [("videoStreamingQuality", 4),
                                             ("motionDetectionSensitivity", 1001),
                                             ("ledColor", "magenta"), ("chimeIndoor", "yes"),
                                             ("chimeTone", 14)])
async def test_invalid_values_are_refused(make_rig, name, value):
    rig = await make_rig()
    client = await rig.client()
    assert await client.error("device.set_property", serialNumber=FRONT, name=name,
                              value=value) == "device_invalid_property_value"


async def test_a_value_the_cloud_refuses(make_rig, monkeypatch):
    rig = await make_rig()
    client = await rig.client()
    monkeypatch.setattr(cloud_settings, "LED_COLOR", __import__("re").compile(".*"))
    assert await client.error("device.set_property", serialNumber=FRONT, name="ledColor",
                              value="#GGGGGG") == "device_invalid_property_value"


async def test_a_lan_ring_arrives_at_once_and_only_once(make_rig):
    rig = await make_rig(poll=60)  # no polling of its own: the LAN is the only source
    client = await rig.client()
    await rig.sim_post(f"/_sim/devices/{rig.device_id(BACK)}/ring")
    assert (await client.event("rings", state=True))["serialNumber"] == BACK
    await rig.backend.poll()  # the cloud's copy of the same ring
    await rig.backend.poll()
    await asyncio.sleep(0.3)
    rings = [e for e in client.drain() if e["event"] == "rings" and e["state"]]
    assert rings == []
    (entry,) = rig.backend.ledger.seen
    assert entry.lan is True and entry.activity_id is not None  # matched, not repeated


async def test_polling_alone_brings_events(make_rig):
    rig = await make_rig(lan=False)
    client = await rig.client()
    await rig.sim_post(f"/_sim/devices/{rig.device_id(FRONT)}/motion")
    event = await client.event("motion detected", state=True)
    assert event["serialNumber"] == FRONT
    await rig.sim_post(f"/_sim/devices/{rig.device_id(FRONT)}/person")
    person = await client.event("person detected", state=True)
    assert person["serialNumber"] == FRONT


async def test_webhooks_bring_events_and_are_removed_on_shutdown(make_rig):
    rig = await make_rig(lan=False, webhooks=True, poll=60)
    assert len(rig.cloud.triggers) == 2
    client = await rig.client()
    await rig.sim_post(f"/_sim/devices/{rig.device_id(FRONT)}/ring")
    await client.event("rings", state=True)  # no LAN, no polling: the webhook brought it
    picture = await client.event("property changed", name="picture")
    assert bytes(picture["value"]["data"]["data"][:2]) == b"\xff\xd8"
    await rig.sim_post(f"/_sim/devices/{rig.device_id(BACK)}/offline")
    assert (await client.event("disconnected"))["serialNumber"] == BACK
    await rig.sim_post(f"/_sim/devices/{rig.device_id(FRONT)}/telemetry?signal_level=-77"
                       "&ip_address=127.0.0.77")
    change = await client.event("property changed", name="wifiRssi", serialNumber=FRONT)
    assert change["value"] == -77
    moved = await client.event("property changed", name="lanIpAddress", serialNumber=FRONT)
    assert moved["value"] == "127.0.0.77"
    await rig.backend.stop()
    assert rig.cloud.triggers == {}


async def test_webhooks_need_the_token(make_rig):
    rig = await make_rig(lan=False, webhooks=True, poll=60)
    async with aiohttp.ClientSession() as http, http.post(
            rig.backend.settings.webhook_url, json={"event": "doorbell"}) as response:
        assert response.status == 403


async def test_an_expired_token_is_refreshed_and_a_revoked_one_leads_to_one_login(make_rig):
    rig = await make_rig(login=True)
    client = await rig.client()
    assert rig.cloud.logins == 1
    rig.cloud.expire_tokens()
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeIndoor",
                    value=False)
    assert rig.cloud.refreshes == 1 and rig.cloud.logins == 1
    rig.cloud.logout()
    await client.ok("device.set_property", serialNumber=FRONT, name="chimeIndoor",
                    value=True)
    assert rig.cloud.logins == 2


async def test_tokens_survive_a_restart_without_a_new_login(make_rig, sims):
    first = await make_rig(login=True)
    await first.backend.stop()
    assert first.cloud.logins == 1
    second = await make_rig(login=True, sim=first.sim, data_dir=first.data_dir)
    client = await second.client()
    assert client.state["devices"] == [FRONT, BACK]
    assert first.cloud.logins == 1


async def test_wrong_credentials_raise_a_connection_error(make_rig):
    errors: list[dict] = []
    rig = await make_rig(login=True, password="wrong",
                         subscriber=lambda e: errors.append(e.data)
                         if e.event == "connection error" else None)
    client = await rig.client()
    assert client.state["stations"] == []
    assert len(errors) == 1 and "login refused" in errors[0]["error"]["message"]
    assert "wrong" not in str(errors)
    requests = rig.cloud.requests
    await asyncio.sleep(1.0)  # several poll intervals: refused credentials are not retried
    assert rig.cloud.requests == requests and len(errors) == 1


async def test_an_offline_doorbell(make_rig):
    rig = await make_rig()
    client = await rig.client()
    rig.cloud.set_online(rig.cloud.devices[rig.device_id(FRONT)], False)
    assert await client.error("station.reboot", serialNumber=FRONT) == \
        "station_connection_timeout"
    assert (await client.event("disconnected"))["serialNumber"] == FRONT
    rig.cloud.set_online(rig.cloud.devices[rig.device_id(FRONT)], True)
    assert (await client.event("connected"))["serialNumber"] == FRONT
    await client.ok("station.reboot", serialNumber=FRONT)
    assert rig.cloud.devices[rig.device_id(FRONT)].reboots == 1


async def test_cloud_trouble_is_retried_then_reported(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    rig.cloud.failures.extend([503, 0])
    await client.ok("station.chime", serialNumber=FRONT, ringtone=2)
    assert rig.cloud.devices[rig.device_id(FRONT)].tones_played == ["2.wav"]
    rig.cloud.failures.extend([503] * 10)
    assert await client.error("station.chime", serialNumber=FRONT) == \
        "station_connection_timeout"
    rig.cloud.failures.clear()


async def test_a_restart_neither_loses_nor_repeats_an_event(make_rig):
    first = await make_rig(lan=False)
    client = await first.client()
    front = first.device_id(FRONT)
    await first.sim_post(f"/_sim/devices/{front}/ring")
    await client.event("rings", state=True)
    await first.backend.stop()
    await first.sim_post(f"/_sim/devices/{front}/motion")  # while the bridge is away
    second = await make_rig(lan=False, sim=first.sim, data_dir=first.data_dir)
    later = await second.client()
    assert (await later.event("motion detected", state=True))["serialNumber"] \
        == FRONT
    await asyncio.sleep(1.0)
    assert [e for e in later.drain() if e["event"] == "rings"] == []


async def test_devices_come_and_go_on_poll_refresh(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    third = rig.cloud.add_device(3)
    await client.ok("driver.poll_refresh")
    assert (await client.event("station added"))["station"] == third.serial
    assert (await client.event("device added"))["device"] == third.serial
    del rig.cloud.devices[rig.device_id(BACK)]
    await client.ok("driver.poll_refresh")
    assert (await client.event("device removed"))["device"] == BACK


async def test_history_and_database_commands(make_rig):
    rig = await make_rig(poll=60)
    client = await rig.client()
    for kind in ("ring", "motion", "ring"):
        await rig.sim_post(f"/_sim/devices/{rig.device_id(FRONT)}/{kind}")
    events = (await client.ok("driver.get_video_events"))["events"]
    assert [e["event_type"] for e in events] == ["doorbell", "motion", "doorbell"]
    assert events[0]["start_time"] >= events[1]["start_time"]
    assert (await client.ok("driver.get_history_events", maxResults=2))["events"][0][
        "device_sn"] == FRONT
    today = time.strftime("%Y%m%d", time.gmtime())
    await client.ok("station.database_count_by_date", serialNumber=FRONT, startDate=today,
                    endDate=today)
    counted = await client.event("database count by date")
    assert counted["data"] == [{"day": today, "total": 3}]
    await client.ok("station.database_query_local", serialNumber=FRONT, startDate=today,
                    endDate=today)
    local = await client.event("database query local")
    assert len(local["data"]) == 3
    await client.ok("station.database_delete", serialNumber=FRONT,
                    ids=[local["data"][0]["monitor_id"]])
    deleted = await client.event("database delete")
    assert deleted["failedIds"] == []
    assert len(rig.cloud.activities) == 2
    await client.ok("station.database_query_latest_info", serialNumber=FRONT)
    latest = await client.event("database query latest")
    assert latest["data"][0]["event_count"] == 2


async def test_a_cloud_down_at_start_is_caught_up_with(make_rig, sims):
    sim = await sims(udp_port=free_port(socket.SOCK_DGRAM))
    sim.cloud.failures.extend([503] * 4)  # every attempt of the first device listing
    rig = await make_rig(sim=sim, lan=False, webhooks=True, poll=0.2)
    client = await rig.client()
    assert client.state["devices"] == []
    assert (await client.event("device added"))["device"] == FRONT
    async with asyncio.timeout(PATIENCE):
        while len(rig.cloud.triggers) < 2:
            await asyncio.sleep(0.05)
    await rig.sim_post(f"/_sim/devices/{rig.device_id(FRONT)}/ring")
    await client.event("rings", state=True)
