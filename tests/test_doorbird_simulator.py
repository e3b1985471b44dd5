"""The DoorBird simulator speaks the real LAN API: checked with doorbirdpy, the library Home
Assistant's DoorBird integration uses, and with plain HTTP where doorbirdpy has no call."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time

import aiohttp
import pytest
from doorbirdpy import (
    DoorBird,
    DoorBirdScheduleEntryOutput,
    DoorBirdScheduleEntrySchedule,
)

from bridge.backends.doorbird import packets
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from bridge.simulators.doorbird.schedule import active
from bridge.webapp import serve

# How Home Assistant writes "always" (its MIN_WEEKDAY and MAX_WEEKDAY): a span that wraps.
HA_ALWAYS = (104400, 104399)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def simulator():
    config = DoorBirdConfig(event_ports=[free_udp_port(), free_udp_port()], relays=["1", "2",
                            "gggaaa@1"], lockout_after=3, lockout_seconds=0.5,
                            reboot_seconds=0.3, rtsp_port=None, rtsp_http_port=None)
    sim = DoorBirdSimulator(config)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def doorbird(simulator):
    host, port = simulator.config.host, simulator.port
    client = DoorBird(host, simulator.config.user, simulator.config.password, port=port)
    yield client
    await client.close()


async def test_info_and_ready(doorbird, simulator):
    assert await doorbird.ready() == (True, 200)
    info = await doorbird.info()
    assert info["DEVICE-TYPE"] == "DoorBird D2101V"
    assert info["RELAYS"] == ["1", "2", "gggaaa@1"]
    assert info["PRIMARY_MAC_ADDR"] == simulator.config.mac


async def test_relays_and_light(doorbird, simulator):
    assert await doorbird.energize_relay(2) is True
    assert await doorbird.energize_relay("gggaaa@1") is True
    assert await doorbird.turn_light_on() is True
    assert simulator.device.snapshot()["relays"] == ["2", "gggaaa@1"]
    assert simulator.device.snapshot()["lights"] == 1


async def test_live_and_history_images(doorbird, simulator):
    first = await doorbird.get_image(doorbird.live_image_url)
    assert first[:2] == b"\xff\xd8" and first[-2:] == b"\xff\xd9"
    await asyncio.sleep(0.2)
    assert await doorbird.get_image(doorbird.live_image_url) != first  # it changes over time
    await simulator.device.ring(1)
    history = await doorbird.get_image(doorbird.history_image_url(1, "doorbell"))
    assert history[:2] == b"\xff\xd8"


async def test_a_new_station_lists_a_doorbell_entry_per_call_button_motion_and_relay():
    sim = DoorBirdSimulator(DoorBirdConfig(buttons=2, event_ports=[free_udp_port()],
                                           rtsp_port=None, rtsp_http_port=None))
    await sim.start()
    client = DoorBird(sim.config.host, sim.config.user, sim.config.password, port=sim.port)
    try:
        entries = await client.schedule()
    finally:
        await client.close()
        await sim.stop()
    assert [(e.input, e.param) for e in entries] == [
        ("doorbell", "1"), ("doorbell", "2"), ("motion", ""), ("relay", "1")]
    for entry in entries[:3]:  # the DoorBird app's push notification, always on
        (output,) = entry.output
        assert (output.event, output.enabled) == ("notify", True)
        assert output.schedule.weekdays == [{"from": "108000", "to": "107999"}]
    assert entries[3].output == []


async def test_home_assistant_attaches_its_favorites_to_the_existing_entries_and_they_fire(
        doorbird, simulator, aiohttp_free_server):
    """Home Assistant's DoorBird integration, step by step: favorites first, then an output per
    favorite on the entry the station already has, with a week-wrapping "always"."""
    calls, url = aiohttp_free_server
    before = await doorbird.schedule()
    for event in ("doorbell", "motion"):
        assert await doorbird.change_favorite("http", f"Home Assistant (door_{event})",
                                              f"{url}/{event}?token=t")
    favorites = (await doorbird.favorites())["http"]
    ids = {f["title"]: i for i, f in favorites.items()}
    for input_, param, event in (("doorbell", "1", "doorbell"), ("motion", "", "motion")):
        entry = await doorbird.get_schedule_entry(input_, param)
        assert [o.event for o in entry.output] == ["notify"]  # found, not made up
        schedule = DoorBirdScheduleEntrySchedule()
        schedule.add_weekday(*HA_ALWAYS)
        entry.output.append(DoorBirdScheduleEntryOutput(
            enabled=True, event="http", param=ids[f"Home Assistant (door_{event})"],
            schedule=schedule))
        assert await doorbird.change_schedule(entry) == (True, 200)

    entries = await doorbird.schedule()
    assert [(e.input, e.param) for e in entries] == [(e.input, e.param) for e in before]
    assert [[o.event for o in e.output] for e in entries] == [
        ["notify", "http"], ["notify", "http"], []]
    await simulator.device.ring(1)
    await simulator.device.motion()
    async with asyncio.timeout(20):
        while len(calls) < 2:
            await asyncio.sleep(0.02)
    assert sorted(calls) == ["/ring/doorbell?token=t", "/ring/motion?token=t"]
    assert simulator.device.notifications == ["doorbell 1", "motion"]


async def test_favorites_and_schedule_entries_round_trip_through_doorbirdpy(doorbird, simulator):
    original = json.dumps(simulator.device.schedules)
    assert await doorbird.change_favorite("http", "bridge", "http://127.0.0.1:9/ring")
    (fav_id,) = (await doorbird.favorites())["http"]
    assert await doorbird.change_favorite("http", "renamed", "http://127.0.0.1:9/r", fav_id)
    assert (await doorbird.favorites())["http"] == {
        fav_id: {"title": "renamed", "value": "http://127.0.0.1:9/r"}}

    relay = await doorbird.get_schedule_entry("relay", "1")
    relay.output.append(DoorBirdScheduleEntryOutput(event="http", param=fav_id))
    assert await doorbird.change_schedule(relay) == (True, 200)
    fresh = await doorbird.get_schedule_entry("doorbell", "3")  # none yet: a new one
    assert fresh.output == []
    output = DoorBirdScheduleEntryOutput(event="relay", param="2")
    output.schedule.add_range(0, 2**31 - 1)
    fresh.output.append(output)
    assert await doorbird.change_schedule(fresh) == (True, 200)
    listed = {(e.input, e.param): e.export for e in await doorbird.schedule()}
    assert listed[("relay", "1")] == relay.export
    assert listed[("doorbell", "3")] == fresh.export

    relay.output.clear()
    assert await doorbird.change_schedule(relay) == (True, 200)
    assert await doorbird.delete_schedule("doorbell", "3")
    assert await doorbird.delete_favorite("http", fav_id)
    assert (await doorbird.favorites())["http"] == {}
    # the relay entry is as it was, in its place, and no other entry changed
    assert json.dumps(simulator.device.schedules) == original


async def test_home_assistants_favorite_reset_empties_every_kind(doorbird, simulator):
    """Home Assistant's "reset favorites" removes every favorite of every kind it lists."""
    simulator.device.save_favorite("sip", "door phone", "sip:door@192.0.2.1", None)
    assert await doorbird.change_favorite("http", "Home Assistant (door_doorbell)", "http://x/")
    for kind, ids in (await doorbird.favorites()).items():
        for fav_id in ids:
            assert await doorbird.delete_favorite(kind, fav_id)
    assert await doorbird.favorites() == {"http": {}, "sip": {}}


async def test_malformed_schedule_entries_are_refused_and_change_nothing(simulator):
    auth = basic(simulator.config.user, simulator.config.password)
    before = json.dumps(simulator.device.schedules)
    notify = {"event": "notify", "param": "", "schedule": {}}
    bad = [
        [], {"input": "window", "param": "", "output": []},
        {"input": "doorbell", "param": 1, "output": []},
        {"input": "doorbell", "param": "1", "output": "notify"},
        {"input": "doorbell", "param": "1", "output": [{"param": ""}]},
        {"input": "doorbell", "param": "1", "output": [{**notify, "schedule": []}]},
        {"input": "doorbell", "param": "1", "output": [
            {**notify, "schedule": {"weekdays": [{"from": "monday", "to": "1"}]}}]},
        {"input": "motion", "param": "", "output": [
            {**notify, "schedule": {"from-to": [{"from": "1"}]}}]},
    ]
    async with aiohttp.ClientSession(headers=auth) as http:
        for entry in bad:
            async with http.post(f"{simulator.url}/bha-api/schedule.cgi", json=entry) as r:
                assert r.status == 400, entry
        async with http.post(f"{simulator.url}/bha-api/schedule.cgi", data=b"{") as r:
            assert r.status == 400
    assert json.dumps(simulator.device.schedules) == before
    await simulator.device.ring(1)  # and the station still rings
    assert simulator.device.notifications == ["doorbell 1"]


@pytest.mark.parametrize("span", [(108000, 107999), HA_ALWAYS, (0, 604799)])
def test_a_weekly_span_that_wraps_around_the_week_means_always(span):
    schedule = {"weekdays": [{"from": str(span[0]), "to": str(span[1])}]}
    week_start = time.mktime((2024, 6, 2, 0, 0, 0, 0, 0, -1))  # a Sunday, local time
    moments = [week_start + offset for offset in range(0, 7 * 86400, 3599)]
    assert all(active(schedule, moment) for moment in moments)


def test_a_weekly_span_runs_only_within_itself_even_across_sunday():
    saturday_night_to_sunday_morning = {"weekdays": [{"from": str(6 * 86400 + 22 * 3600),
                                                      "to": str(6 * 3600)}]}
    week_start = time.mktime((2024, 6, 2, 0, 0, 0, 0, 0, -1))  # a Sunday, local time

    def at(day: int, hour: int) -> bool:
        return active(saturday_night_to_sunday_morning, week_start + day * 86400 + hour * 3600)

    assert at(6, 23) and at(0, 1) and at(7, 5)
    assert not at(0, 7) and not at(3, 12) and not at(6, 21)
    assert not active({}, time.time())  # an empty schedule never runs


async def test_the_html5_viewer_shows_the_live_stream(doorbird, simulator):
    async with aiohttp.ClientSession() as http:
        async with http.get(doorbird.html5_viewer_url) as response:  # user:password@ in it
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        assert "video.cgi" in page and "<img" in page
        assert simulator.config.password not in page
        async with http.get(f"{simulator.url}/bha-api/view.html") as response:
            assert response.status == 401
        # what the page's script asks for, with the credentials it was opened with
        async with http.get(f"{simulator.url}/bha-api/video.cgi", params={
                "http-user": simulator.config.user,
                "http-password": simulator.config.password}) as response:
            assert response.content_type == "multipart/x-mixed-replace"
            part = await aiohttp.MultipartReader.from_response(response).next()
            assert (await part.read())[:2] == b"\xff\xd8"


async def test_rtsp_and_rtsp_over_http_take_free_ports_where_theirs_are_taken():
    """RTSP listens (its streams: test_doorbird_simulator_media); RTSP over HTTP, which the
    station has but the simulator does not serve, keeps its port bound without listening."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        wanted = taken.getsockname()[1]
        sim = DoorBirdSimulator(DoorBirdConfig(event_ports=[free_udp_port()],
                                               rtsp_port=wanted, rtsp_http_port=0))
        await sim.start()
        try:
            assert sim.rtsp_port not in (None, wanted)  # taken: a free one instead
            assert sim.rtsp_http_port not in (None, 0, sim.rtsp_port)
            for port in (sim.rtsp_port, sim.rtsp_http_port):
                with socket.socket() as other, pytest.raises(OSError):
                    other.bind(("127.0.0.1", port))  # kept for the station
            async with aiohttp.ClientSession() as http, \
                    http.get(f"{sim.url}/_sim/state") as response:
                state = await response.json()
            assert (state["rtsp_port"], state["rtsp_http_port"]) == (sim.rtsp_port,
                                                                     sim.rtsp_http_port)
            assert any(str(sim.rtsp_port) in line for line in sim.describe())
        finally:
            await sim.stop()
    assert sim.rtsp_port is None  # released


async def test_without_rtsp_ports_none_are_declared(simulator):
    assert (simulator.rtsp_port, simulator.rtsp_http_port) == (None, None)
    assert not any("reserved" in line for line in simulator.describe())


async def test_monitor_stream_reports_rings_and_motion(doorbird, simulator):
    seen: list[str] = []
    await doorbird.start_monitoring(seen.append, lambda error: seen.append(f"error {error}"))
    await asyncio.sleep(0.3)
    await simulator.device.ring(1)
    await simulator.device.motion()
    async with asyncio.timeout(5):
        while len(seen) < 2:
            await asyncio.sleep(0.05)
    await doorbird.stop_monitoring()
    assert seen == ["doorbell", "motionsensor"]
    assert await doorbird.doorbell_state() is False
    assert await doorbird.motion_sensor_state() is False


async def test_restart(doorbird, simulator):
    assert await doorbird.restart() is True
    await asyncio.sleep(0.3)
    assert simulator.device.restarts == 1


async def test_wrong_credentials_401_then_423_lockout(simulator):
    async with aiohttp.ClientSession() as http:
        url = f"{simulator.url}/bha-api/info.cgi"
        wrong = basic(simulator.config.user, "wrong")
        right = basic(simulator.config.user, simulator.config.password)
        statuses = []
        for _ in range(4):
            async with http.get(url, headers=wrong) as response:
                statuses.append(response.status)
        assert statuses == [401, 401, 423, 423]
        async with http.get(url, headers=right) as response:
            assert response.status == 423  # locked even with the right password
        await asyncio.sleep(0.6)
        async with http.get(url, headers=right) as response:
            assert response.status == 200


async def test_digest_auth_and_session_ids(simulator):
    digest = aiohttp.DigestAuthMiddleware(simulator.config.user, simulator.config.password)
    async with (
        aiohttp.ClientSession(middlewares=(digest,)) as http,
        http.get(f"{simulator.url}/bha-api/getsession.cgi") as response,
    ):
        assert response.status == 200
        session = (await response.json())["BHA"]["SESSIONID"]
    async with aiohttp.ClientSession() as http:
        image = f"{simulator.url}/bha-api/image.cgi?sessionid={session}"
        async with http.get(image) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
        async with http.get(f"{simulator.url}/bha-api/getsession.cgi?invalidate={session}",
                            headers=basic(simulator.config.user, simulator.config.password)):
            pass
        async with http.get(image) as response:
            assert response.status == 401


async def test_live_view_only_while_watch_always_or_after_a_ring(simulator):
    simulator.config.watch_always = False
    auth = basic(simulator.config.user, simulator.config.password)
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{simulator.url}/bha-api/video.cgi") as response:
            assert response.status == 204
        await simulator.device.ring(1)
        async with http.get(f"{simulator.url}/bha-api/video.cgi") as response:
            assert response.status == 200
            assert response.content_type == "multipart/x-mixed-replace"
            reader = aiohttp.MultipartReader.from_response(response)
            frame = await (await reader.next()).read()
            assert frame[:2] == b"\xff\xd8"


async def test_audio_receive_and_transmit(simulator):
    auth = basic(simulator.config.user, simulator.config.password)
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{simulator.url}/bha-api/audio-receive.cgi") as response:
            assert response.content_type == "audio/basic"
            chunk = await response.content.readexactly(800)
            assert len(set(chunk)) > 10  # a tone, not silence

        async def slow_body():
            for _ in range(5):
                yield b"\xff" * 160
                await asyncio.sleep(0.05)

        url = f"{simulator.url}/bha-api/audio-transmit.cgi"
        first = asyncio.create_task(http.post(url, data=slow_body(),
                                              headers={"Content-Type": "audio/basic"}))
        await asyncio.sleep(0.1)
        async with http.post(url, data=b"\xff" * 160) as second:
            assert second.status == 503  # one transmitter at a time
        assert (await first).status == 200
        assert simulator.device.audio_received == 800


async def test_sip_settings_with_ranges_and_defaults(simulator):
    sip = f"{simulator.url}/bha-api/sip.cgi"
    auth = basic(simulator.config.user, simulator.config.password)
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(sip, params={"action": "status"}) as response:
            status = (await response.json())["BHA"]["SIP"][0]
        assert (status["MIC_VOLUME"], status["SPK_VOLUME"], status["RING_TIME_LIMIT"]) == (
            "33", "70", "300")
        async with http.get(sip, params={"action": "settings", "spk_volume": "101"}) as r:
            assert r.status == 400
        async with http.get(sip, params={"action": "settings", "spk_volume": "55",
                                         "ring_time_limit": "30"}) as r:
            assert r.status == 200
        async with http.get(sip, params={"action": "status"}) as response:
            status = (await response.json())["BHA"]["SIP"][0]
        assert (status["SPK_VOLUME"], status["RING_TIME_LIMIT"]) == ("55", "30")


async def test_busy_and_monitor_limits(simulator):
    auth = basic(simulator.config.user, simulator.config.password)
    async with aiohttp.ClientSession(headers=auth) as http:
        streams = [await http.get(f"{simulator.url}/bha-api/monitor.cgi?ring=doorbell")
                   for _ in range(8)]
        async with http.get(f"{simulator.url}/bha-api/monitor.cgi?ring=doorbell") as ninth:
            assert ninth.status == 509
        for stream in streams:
            stream.close()
        async with http.post(f"{simulator.url}/_sim/busy?seconds=0.3"):
            pass
        async with http.get(f"{simulator.url}/bha-api/info.cgi") as response:
            assert response.status == 503


async def test_events_are_encrypted_udp_packets_on_every_port(simulator):
    loop = asyncio.get_running_loop()
    received: list[tuple[int, bytes]] = []

    class Collector(asyncio.DatagramProtocol):
        def __init__(self, port: int) -> None:
            self.port = port

        def datagram_received(self, data: bytes, addr) -> None:
            received.append((self.port, data))

    transports = []
    for port in simulator.config.event_ports:
        transport, _ = await loop.create_datagram_endpoint(
            lambda port=port: Collector(port), local_addr=("127.0.0.1", port))
        transports.append(transport)
    await simulator.device.ring(2)
    await simulator.device.motion()
    await asyncio.sleep(0.2)
    for transport in transports:
        transport.close()
    key = packets.notification_key(simulator.config.notification_key)
    events = [packets.decode(data, key) for _, data in received]
    mine = [e for e in events if e is not None]
    assert {e.event for e in mine} == {"2", "motion"}
    assert all(e.intercom_id == simulator.config.user[:6] for e in mine)
    assert all(abs(e.timestamp - time.time()) < 5 for e in mine)
    # repeated on both ports, with packets for the other user that this key cannot open
    assert {port for port, _ in received} == set(simulator.config.event_ports)
    assert len(mine) == 2 * 3 * 2 and len(events) > len(mine)


async def test_schedules_call_the_http_favorites(simulator, aiohttp_free_server):
    calls, url = aiohttp_free_server
    device = simulator.device
    fav = device.save_favorite("http", "hook", url, None)
    device.save_schedule({"input": "doorbell", "param": "1", "output": [
        {"event": "http", "param": fav, "enabled": "1",
         "schedule": {"weekdays": [{"from": "0", "to": "604799"}]}}]})
    device.save_schedule({"input": "motion", "param": "", "output": [
        {"event": "http", "param": fav, "enabled": "0", "schedule": {}}]})
    await device.ring(1)
    await device.motion()
    async with asyncio.timeout(20):
        while not calls:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert len(calls) == 1  # the disabled motion output did not fire


@pytest.fixture
async def aiohttp_free_server():
    from aiohttp import web

    calls: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hook)
    runner, port = await serve(app, "127.0.0.1", 0)
    yield calls, f"http://127.0.0.1:{port}/ring"
    await runner.cleanup()


def test_pictures_can_be_taken_at_any_moment():
    from bridge.simulators.scenery import Camera

    camera = Camera(width=64, height=32)
    pictures = {camera.jpeg(moment / 8) for moment in range(64 * 2)}  # the bar sweeps past
    assert len(pictures) > 60  # every edge position encodes, and pictures differ


async def test_the_simulator_runs_alone_from_the_command_line():
    import sys

    port = free_tcp_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "simulate", "doorbird", "--http-port", str(port),
        "--user", "abcdef0001", "--password", "pw", "--relays", "1,gggaaa@1",
        "--event-port", str(free_udp_port()), "--device-type", "DoorBird D1101V",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert b"simulator ready" in line
        client = DoorBird("127.0.0.1", "abcdef0001", "pw", port=port)
        info = await client.info()
        await client.close()
        assert info["DEVICE-TYPE"] == "DoorBird D1101V"
        assert info["RELAYS"] == ["1", "gggaaa@1"]
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
