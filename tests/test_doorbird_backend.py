"""The DoorBird backend against the DoorBird simulator, through the bridge, over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time

import pytest
from aiohttp import web

from bridge.backends.doorbird import DoorBirdBackend
from bridge.backends.doorbird.callbacks import HttpCallbacks
from bridge.backends.doorbird.client import DoorBirdClient
from bridge.settings import DoorBirdSettings
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from bridge.webapp import serve
from tests.wsclient import Client

MAC = "1CCAE3711111"
BELL, RELAY1, RELAY2, PAIRED = MAC, f"{MAC}-R1", f"{MAC}-R2", f"{MAC}-Rgggaaa-1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rig:
    """A simulated DoorBird, a bridge with a DoorBird backend pointed at it, and clients."""

    def __init__(self, simulator: DoorBirdSimulator, backend: DoorBirdBackend, bridge) -> None:
        self.sim, self.backend, self.bridge = simulator, backend, bridge
        self.clients: list[Client] = []

    @property
    def device(self):
        return self.sim.device

    async def client(self, schema: int = 21, listen: bool = True) -> Client:
        client = await Client.connect(self.bridge.url, schema=schema, listen=listen)
        self.clients.append(client)
        return client


@pytest.fixture
def make_rig(bridge_factory):
    made: list[Rig] = []

    async def make(*, events: str = "udp", password: str | None = None, sim_options=None,
                   backend_options=None, ports=None, locked=False, subscriber=None,
                   prepare=None) -> Rig:
        ports = ports or [free_udp_port(), free_udp_port()]
        config = DoorBirdConfig(**{"event_ports": ports, "relays": ["1", "2", "gggaaa@1"],
                                   "lockout_after": 3, "lockout_seconds": 30,
                                   "reboot_seconds": 0.5, "rtsp_port": None,
                                   "rtsp_http_port": None, **(sim_options or {})})
        sim = DoorBirdSimulator(config)
        await sim.start()
        if locked:
            sim.device.locked_until = time.monotonic() + 30
        if prepare is not None:
            prepare(sim.device)
        bridge_port = free_tcp_port()
        settings = DoorBirdSettings(
            host=sim.address, username=config.user,
            password=password or config.password, event_ports=ports,
            listen_host="127.0.0.1", events=events, relay_seconds=0.3,
            callback_url=f"http://127.0.0.1:{bridge_port}")
        client = DoorBirdClient(settings.host, settings.username,
                                settings.password.get_secret_value(), connection_interval=0.05,
                                busy_backoff=0.1)
        options = {"health_seconds": 0.3, "retry_seconds": 0.1, "max_retry_seconds": 0.4,
                   "auth_retry_seconds": 30, "light_seconds": 0.3,
                   **(backend_options or {})}
        backend = DoorBirdBackend(settings, client=client, **options)
        bridge = await bridge_factory([backend], subscriber=subscriber, port=bridge_port)
        rig = Rig(sim, backend, bridge)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        for client in rig.clients:
            asyncio.get_event_loop().create_task(client.close())


@pytest.fixture
async def rig(make_rig) -> Rig:
    rig = await make_rig()
    yield rig
    await rig.sim.stop()


async def test_discovery_builds_a_station_a_doorbell_and_relay_locks(rig):
    client = await rig.client()
    assert client.state["stations"] == [BELL]
    assert client.state["devices"] == [BELL, RELAY1, RELAY2, PAIRED]
    bell = (await client.ok("device.get_properties", serialNumber=BELL))["properties"]
    assert bell["model"] == "DoorBird D2101V"
    assert bell["softwareVersion"] == "000130 build 15870439"
    assert bell["type"] == 5 and bell["stationSerialNumber"] == BELL
    # the bridge re-serves the camera: its URL, never the station's session id
    assert bell["rtspStream"] is True
    assert bell["rtspStreamUrl"] == rig.bridge.rtsp.url(BELL)
    assert bell["rtspStreamUrl"].startswith("rtsp://127.0.0.1:")
    assert bell["speakerVolume"] == 70 and bell["microphoneVolume"] == 33
    assert bell["relayPasscode"] is None  # write-only
    relay = (await client.ok("device.get_properties", serialNumber=PAIRED))["properties"]
    assert relay["type"] == 51 and relay["stationSerialNumber"] == BELL
    assert relay["model"] == "DoorBird DoorController relay" and relay["locked"] is True


async def test_metadata_carries_the_device_ranges(rig):
    client = await rig.client()
    meta = (await client.ok("device.get_properties_metadata", serialNumber=BELL))["properties"]
    assert (meta["speakerVolume"]["min"], meta["speakerVolume"]["max"]) == (1, 100)
    assert (meta["ringTimeLimit"]["min"], meta["ringTimeLimit"]["max"]) == (10, 300)
    assert (meta["callTimeLimit"]["min"], meta["callTimeLimit"]["max"]) == (30, 300)
    assert meta["relayPasscode"]["readable"] is False
    assert meta["relayPasscode"]["writeable"] is True
    assert meta["light"]["writeable"] is True


async def test_commands_are_only_what_works(rig):
    client = await rig.client()
    assert (await client.ok("device.get_commands", serialNumber=BELL))["commands"] == [
        "start_livestream", "stop_livestream", "is_livestreaming", "start_talkback",
        "stop_talkback", "talkback_audio_data", "is_talkback_ongoing",
        "start_rtsp_livestream", "stop_rtsp_livestream", "is_rtsp_livestreaming"]
    assert (await client.ok("device.get_commands", serialNumber=RELAY1))["commands"] == [
        "unlock", "open"]
    assert (await client.ok("station.get_commands", serialNumber=BELL))["commands"] == [
        "reboot", "download_image"]
    assert await client.error("device.start_rtsp_livestream", serialNumber=RELAY1) == \
        "device_not_supported"
    assert await client.error("station.trigger_alarm", serialNumber=BELL, seconds=2) == \
        "device_not_supported"


async def test_a_ring_arrives_once_as_a_pulse_with_its_button(rig):
    client = await rig.client()
    await rig.device.ring(2)  # UDP is this rig's only event source
    assert (await client.event("rings", state=True))["serialNumber"] == BELL
    assert (await client.event("property changed", name="ringing"))["value"] is True
    await client.event("rings", state=False)
    await asyncio.sleep(0.3)
    later = client.drain()
    assert [e for e in later if e["event"] == "rings"] == []  # 3 repeats x 2 ports: one ring
    props = (await client.ok("device.get_properties", serialNumber=BELL))["properties"]
    assert props["doorbellButton"] == 2


async def test_motion_and_a_fresh_picture(rig):
    client = await rig.client()
    await rig.device.motion()
    assert (await client.event("motion detected", state=True))["serialNumber"] == BELL
    picture = await client.event("property changed", name="picture")
    assert picture["value"]["type"] == {"ext": "jpg", "mime": "image/jpeg"}
    assert bytes(picture["value"]["data"]["data"][:2]) == b"\xff\xd8"


async def test_version_one_packets_are_understood(make_rig):
    rig = await make_rig(sim_options={"udp_version": 1})
    client = await rig.client()
    await rig.device.ring(1)
    await client.event("rings", state=True)
    await rig.sim.stop()


async def test_monitor_mode(make_rig):
    rig = await make_rig(events="monitor")
    client = await rig.client()
    await asyncio.sleep(0.3)
    assert await client.ok("driver.is_push_connected") == {"connected": True}
    await rig.device.ring(1)
    await client.event("rings", state=True)
    await rig.device.motion()
    await client.event("motion detected", state=True)
    await rig.sim.stop()


async def test_monitor_is_the_fallback_when_the_udp_ports_are_taken(make_rig):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        rig = await make_rig(ports=[port])
        assert rig.backend.events_mode == "monitor"
        client = await rig.client()
        await asyncio.sleep(0.3)
        await rig.device.ring(1)
        await client.event("rings", state=True)
        await rig.sim.stop()
    finally:
        taken.close()


async def test_the_light(rig):
    client = await rig.client()
    await client.ok("device.set_property", serialNumber=BELL, name="light", value=True)
    assert (await client.event("property changed", name="light"))["value"] is True
    assert rig.device.snapshot()["lights"] == 1
    assert (await client.event("property changed", name="light"))["value"] is False
    assert await client.error("device.set_property", serialNumber=BELL, name="light",
                              value=False) == "device_invalid_property_value"


async def test_a_relay_opens_and_locks_again(rig):
    client = await rig.client()
    await client.ok("device.set_property", serialNumber=RELAY2, name="locked", value=False)
    assert await client.event("locked", serialNumber=RELAY2) == {
        "source": "device", "event": "locked", "serialNumber": RELAY2, "state": False}
    assert rig.device.snapshot()["relays"] == ["2"]
    assert (await client.event("locked", serialNumber=RELAY2))["state"] is True
    await client.ok("device.unlock", serialNumber=RELAY1)
    await client.ok("device.open", serialNumber=PAIRED)
    assert rig.device.snapshot()["relays"] == ["2", "1", "gggaaa@1"]
    assert await client.error("device.set_property", serialNumber=RELAY1, name="locked",
                              value=True) == "device_invalid_property_value"


async def test_sip_settings(rig):
    client = await rig.client()
    await client.ok("device.set_property", serialNumber=BELL, name="speakerVolume", value=55)
    await client.ok("device.set_property", serialNumber=BELL, name="dtmf", value=True)
    await client.ok("device.set_property", serialNumber=BELL, name="relayPasscode",
                    value=1234)
    assert rig.device.sip["spk_volume"] == 55
    assert rig.device.sip["dtmf"] == 1
    assert rig.device.sip["relay1_passcode"] == 1234
    props = (await client.ok("device.get_properties", serialNumber=BELL))["properties"]
    assert props["speakerVolume"] == 55 and props["relayPasscode"] is None
    assert await client.error("device.set_property", serialNumber=BELL, name="ringTimeLimit",
                              value=5) == "device_invalid_property_value"


async def test_reboot_disconnects_and_reconnects_the_station(rig):
    client = await rig.client()
    await client.ok("station.reboot", serialNumber=BELL)
    assert rig.device.restarts == 0 or rig.device.restarts == 1
    await client.event("disconnected")
    await client.event("connected")
    assert rig.device.restarts == 1
    assert (await client.ok("station.is_connected", serialNumber=BELL))["connected"] is True


async def test_download_image(rig):
    client = await rig.client()
    await rig.device.ring(1)
    assert await client.ok("station.download_image", serialNumber=BELL,
                           file="doorbell/1") == {"async": True}
    event = await client.event("image downloaded")
    assert event["file"] == "doorbell/1"
    assert bytes(event["image"]["data"]["data"][:2]) == b"\xff\xd8"
    assert await client.error("station.download_image", serialNumber=BELL,
                              file="garden/1") == "device_invalid_command_value"


async def test_history_events(rig):
    client = await rig.client()
    for _ in range(2):
        await rig.device.ring(1)
        await client.event("rings", state=True)
        await asyncio.sleep(1.05)  # events of the same second are one event
    await rig.device.motion()
    await client.event("motion detected", state=True)
    events = (await client.ok("driver.get_history_events"))["events"]
    assert [e["event_type"] for e in events] == ["motion", "ring", "ring"]
    assert events[0]["device_sn"] == BELL
    assert events[0]["start_time"] >= events[1]["start_time"] >= events[2]["start_time"]
    assert [e["storage_path"] for e in events] == ["motionsensor/1", "doorbell/1",
                                                   "doorbell/2"]
    one = await client.ok("driver.get_video_events", maxResults=1)
    assert len(one["events"]) == 1


async def test_history_timestamps_come_from_the_device_on_start(make_rig, bridge_factory):
    rig = await make_rig()
    await rig.device.ring(1)
    await rig.device.motion()
    await asyncio.sleep(1.1)
    later = DoorBirdBackend(rig.backend.settings, client=DoorBirdClient(
        rig.sim.address, rig.sim.config.user, rig.sim.config.password,
        connection_interval=0.05))
    other = await bridge_factory([later])
    client = await Client.connect(other.url, schema=21)
    await asyncio.sleep(0.5)
    events = (await client.ok("driver.get_history_events"))["events"]
    assert sorted(e["storage_path"] for e in events) == ["doorbell/1", "motionsensor/1"]
    await client.close()
    await rig.sim.stop()


async def test_wrong_credentials_report_a_connection_error_without_a_lock_out(make_rig):
    rig = await make_rig(password="wrong-password")
    client = await rig.client(schema=21)
    assert client.state["stations"] == []
    assert client.state["driver"]["connected"] is True
    await asyncio.sleep(1.0)
    assert not rig.device.locked_out()
    assert len(rig.device.failures) <= 1
    await rig.sim.stop()


async def test_a_locked_device_reports_a_connection_error(make_rig):
    errors: list[dict] = []
    rig = await make_rig(locked=True, subscriber=lambda e: errors.append(e.data)
                         if e.event == "connection error" else None)
    assert len(errors) == 1 and "locked out" in errors[0]["error"]["message"]
    assert rig.backend.station is None
    requests = len(rig.device.connections)
    await asyncio.sleep(0.5)
    assert len(rig.device.connections) == requests  # no retries into the lock-out
    await rig.sim.stop()


async def test_a_busy_device_is_retried(rig):
    client = await rig.client()
    rig.device.busy_until = time.monotonic() + 0.15
    await client.ok("device.set_property", serialNumber=BELL, name="light", value=True)
    assert rig.device.snapshot()["lights"] == 1


async def test_a_device_that_stays_busy_times_out(rig):
    client = await rig.client()
    rig.device.busy_until = time.monotonic() + 30
    assert await client.error("device.unlock", serialNumber=RELAY1) == \
        "station_connection_timeout"


async def test_an_unreachable_device_is_disconnected_then_refreshed(rig):
    client = await rig.client()
    rig.device.go_offline()
    assert await client.error("device.unlock", serialNumber=RELAY1) == "station_not_connected"
    await client.event("disconnected", serialNumber=BELL)
    rig.device.sip["spk_volume"] = 40  # changed while away
    rig.device.offline = False
    await client.event("connected", serialNumber=BELL)
    change = await client.event("property changed", name="speakerVolume")
    assert change["value"] == 40


async def test_new_connections_are_paced(make_rig):
    rig = await make_rig()
    rig.backend.client._interval = 0.5
    before = len(rig.device.connections)
    # straight to the client: the driver would share identical commands in flight
    await asyncio.gather(*(rig.backend.client.open_door("1") for _ in range(6)))
    stamps = rig.device.connections[before:]
    assert len(stamps) >= 3  # concurrent calls needed new connections
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.45 for gap in gaps), gaps
    await rig.sim.stop()


def station_state(device) -> str:
    """The station's favorites and schedule, byte for byte as JSON (the simulated station, as a
    real one, keeps its entries and outputs in order)."""
    return json.dumps({"favorites": device.favorites, "schedule": device.schedules})


@pytest.fixture
async def other_integration():
    """Where another home automation's favorite on the station points: the calls it gets."""
    calls: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hook)
    runner, port = await serve(app, "127.0.0.1", 0)
    yield calls, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def home_assistant_setup(url: str, found: list[str]):
    """What the DoorBird app (its pre-filled schedule) and Home Assistant (its favorites, with
    outputs on the existing entries, written as Home Assistant writes them) left on the
    station, plus someone's disabled output; ``found`` gets the station's state as the bridge
    will find it."""

    def prepare(device) -> None:
        always = {"weekdays": [{"from": "104400", "to": "104399"}]}
        for button in ("1", "2"):
            fav = device.save_favorite("http", f"Home Assistant (door_{button})",
                                       f"{url}/ring/{button}", None)
            entry = next(e for e in device.schedules if e["param"] == button)
            entry["output"].append({"enabled": "1", "event": "http", "param": fav,
                                    "schedule": always})
        fav = device.save_favorite("http", "Home Assistant (door_motion)", f"{url}/motion",
                                   None)
        motion = next(e for e in device.schedules if e["input"] == "motion")
        motion["output"] += [{"enabled": "1", "event": "http", "param": fav, "schedule": always},
                             {"event": "http", "param": "7", "enabled": "0", "schedule": {}}]
        device.save_favorite("sip", "door phone", "sip:door@192.0.2.1", None)
        found.append(station_state(device))

    return prepare


def outputs(device) -> dict[tuple[str, str], list[str]]:
    return {(e["input"], e["param"]): [o["event"] for o in e["output"]]
            for e in device.schedules}


async def test_http_mode_leaves_the_station_as_it_found_it(make_rig, other_integration):
    calls, url = other_integration
    found: list[str] = []
    rig = await make_rig(events="http", sim_options={"buttons": 2},
                         prepare=home_assistant_setup(url, found))
    device, client = rig.device, await rig.client()
    assert await client.ok("driver.is_push_connected") == {"connected": True}
    # the bridge's outputs come last on the entries the station has; no entry is added
    assert outputs(device) == {("doorbell", "1"): ["notify", "http", "http"],
                               ("doorbell", "2"): ["notify", "http", "http"],
                               ("motion", ""): ["notify", "http", "http", "http"],
                               ("relay", "1"): []}
    ours = sorted(f["title"] for f in device.favorites["http"].values()
                  if f["title"].startswith("eufy-bridge"))
    assert ours == [f"eufy-bridge {MAC} motion", f"eufy-bridge {MAC} ring/1",
                    f"eufy-bridge {MAC} ring/2"]

    # everyone's outputs work in between: the app's pushes, the other favorites, the bridge
    for button in (1, 2):
        await device.ring(button)
        await client.event("rings", state=True)
        await client.event("rings", state=False)
        props = (await client.ok("device.get_properties", serialNumber=BELL))["properties"]
        assert props["doorbellButton"] == button
    await device.motion()
    await client.event("motion detected", state=True)
    assert device.notifications == ["doorbell 1", "doorbell 2", "motion"]
    async with asyncio.timeout(20):
        while len(calls) < 3:
            await asyncio.sleep(0.02)
    assert sorted(calls) == ["/motion", "/ring/1", "/ring/2"]

    await rig.backend.stop()
    assert station_state(device) == found[0]
    await rig.sim.stop()


async def test_http_mode_removes_only_the_entries_it_created(make_rig):
    found: list[str] = []

    def no_motion_entry_and_an_empty_doorbell_entry(device) -> None:
        device.schedules = [{"input": "doorbell", "param": "1", "output": []},
                            {"input": "relay", "param": "1", "output": []}]
        found.append(station_state(device))

    rig = await make_rig(events="http", prepare=no_motion_entry_and_an_empty_doorbell_entry)
    device, client = rig.device, await rig.client()
    assert await client.ok("driver.is_push_connected") == {"connected": True}
    assert outputs(device) == {("doorbell", "1"): ["http"], ("relay", "1"): [],
                               ("motion", ""): ["http"]}
    await rig.backend.stop()
    assert station_state(device) == found[0]
    await rig.sim.stop()


async def test_leftovers_of_an_unclean_shutdown_are_removed_on_the_next_start():
    sim = DoorBirdSimulator(DoorBirdConfig(event_ports=[free_udp_port()], rtsp_port=None,
                                           rtsp_http_port=None))
    await sim.start()
    before = station_state(sim.device)
    client = DoorBirdClient(sim.address, sim.config.user, sim.config.password,
                            connection_interval=0.05)
    client.open()
    try:
        crashed = HttpCallbacks(client, MAC, "http://127.0.0.1:9")
        await crashed.register()  # and never unregistered
        assert len(sim.device.favorites["http"]) == 2
        again = HttpCallbacks(client, MAC, "http://127.0.0.1:9")
        await again.register()
        assert len(sim.device.favorites["http"]) == 2  # the old ones went first
        assert all(again.token in f["value"] for f in sim.device.favorites["http"].values())
        await again.unregister()
    finally:
        await client.close()
        await sim.stop()
    assert station_state(sim.device) == before


async def test_a_schedule_answer_of_another_shape_changes_nothing_and_events_use_monitor(
        make_rig):
    def hostile(device) -> None:
        device.schedules = {"not": "a list"}

    rig = await make_rig(events="http", prepare=hostile)
    client = await rig.client()
    assert rig.backend.events_mode == "monitor"
    assert rig.device.favorites["http"] == {}
    assert rig.device.schedules == {"not": "a list"}
    rig.device.schedules = []  # so that the simulated station can ring at all
    await rig.device.ring(1)
    await client.event("rings", state=True)
    assert rig.device.favorite_calls == []
    await rig.sim.stop()


async def test_http_callbacks_need_the_token(make_rig):
    import aiohttp

    rig = await make_rig(events="http")
    url = f"http://127.0.0.1:{rig.bridge.server.port}/doorbird/{MAC}/ring/1"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params={"token": "guess"}) as response:
            assert response.status == 403
        token = rig.backend._callbacks.token
        async with http.get(url, params={"token": token}) as response:
            assert response.status == 200
    client = await rig.client()
    assert (await client.ok("device.get_properties", serialNumber=BELL))["properties"][
        "ringing"] is True
    await rig.sim.stop()
