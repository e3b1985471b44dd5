"""The DoorBird simulator speaks the real LAN API: checked with doorbirdpy, the library Home
Assistant's DoorBird integration uses, and with plain HTTP where doorbirdpy has no call."""

from __future__ import annotations

import asyncio
import base64
import socket
import time

import aiohttp
import pytest
from doorbirdpy import DoorBird, DoorBirdScheduleEntry, DoorBirdScheduleEntryOutput

from bridge.backends.doorbird import packets
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from bridge.webapp import serve


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
                            reboot_seconds=0.3)
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


async def test_favorites_and_schedules(doorbird, simulator):
    assert await doorbird.change_favorite("http", "bridge", "http://127.0.0.1:9/ring")
    favorites = await doorbird.favorites()
    (fav_id,) = favorites["http"]
    assert favorites["http"][fav_id] == {"title": "bridge", "value": "http://127.0.0.1:9/ring"}
    entry = DoorBirdScheduleEntry("doorbell", "1")
    output = DoorBirdScheduleEntryOutput(event="http", param=fav_id)
    output.schedule.add_weekday(0, 604799)
    entry.output.append(output)
    assert await doorbird.change_schedule(entry) == (True, 200)
    assert [e.input for e in await doorbird.schedule()] == ["doorbell"]
    assert await doorbird.delete_schedule("doorbell", "1")
    assert await doorbird.schedule() == []
    assert await doorbird.delete_favorite("http", fav_id)
    assert (await doorbird.favorites())["http"] == {}


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
