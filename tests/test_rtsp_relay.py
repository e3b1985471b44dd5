"""Every camera re-served over RTSP by the bridge: the URL eufy clients get plays in a real
player (PyAV), any number of players share the device's one upstream, the Home Assistant path
(start, wait for the event, play) works, the token guards it, and a player that leaves in any
way leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import av
import pytest
import uvloop

from bridge import logs
from bridge.app import Bridge
from bridge.backends.doorbird import DoorBirdBackend
from bridge.backends.doorbird import backend as doorbird_backend
from bridge.demo import Demo
from bridge.logs import LogRecord
from bridge.media.rtsp import PlayerInfo, RtspServer
from bridge.settings import DoorBirdSettings, load_settings
from bridge.simulators.doorbird import DoorBirdConfig, DoorBirdSimulator
from tests.doubles import DOORBELL as DOUBLE
from tests.leaks import resources, settled
from tests.test_doorbird_backend import free_udp_port
from tests.wsclient import PATIENCE, Client, until

TOKEN = "rtsp-test-token-0123456789"


def decode(url: str, count: int, transport: str = "tcp",
           started: threading.Event | None = None) -> int:
    """Frames PyAV decodes from ``url`` (at most ``count``); raises on a decoder error."""
    decoded = 0
    with av.open(url, options={"rtsp_transport": transport, "stimeout": "20000000",
                               "timeout": "20000000"}, timeout=20) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            for _ in packet.decode():
                decoded += 1
                if started is not None:
                    started.set()
            if decoded >= count:
                break
    return decoded


async def play(url: str, count: int, transport: str = "tcp") -> int:
    return await asyncio.to_thread(decode, url, count, transport)


def decode_with_sound(url: str, count: int) -> tuple[int, int]:
    """Pictures and sound frames PyAV decodes until ``count`` pictures."""
    decoded = {"video": 0, "audio": 0}
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=20) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
        for packet in container.demux():
            decoded[packet.stream.type] += len(packet.decode())
            if decoded["video"] >= count:
                break
    return decoded["video"], decoded["audio"]


@pytest.fixture
async def house(tmp_path: Any) -> AsyncIterator[tuple[Demo, Bridge]]:
    """The demo house with its simulators at hand (to count the DoorBird's streams)."""
    demo = Demo(visitors=None)
    await demo.start()
    settings = demo.settings(load_settings(**{"server.port": 0, "media.rtsp_port": 0,
                                              "server.data_dir": tmp_path}))
    bridge = Bridge(settings)
    await bridge.start()
    yield demo, bridge
    await bridge.stop()
    await demo.stop()


async def cameras(client: Client) -> dict[str, dict[str, Any]]:
    """Each camera's properties (a camera lists ``start_livestream``)."""
    found = {}
    state = (await client.ok("start_listening"))["state"]
    for device in state["devices"]:
        serial = device["serialNumber"] if isinstance(device, dict) else device
        commands = (await client.ok("device.get_commands", serialNumber=serial))["commands"]
        if "start_livestream" in commands:
            found[serial] = (await client.ok("device.get_properties",
                                             serialNumber=serial))["properties"]
    return found


async def test_every_camera_of_the_demo_plays_from_its_rtsp_url(house):
    demo, bridge = house
    client = await Client.connect(bridge.url, schema=21)
    try:
        found = await cameras(client)
    finally:
        await client.close()
    assert found, "the demo house has a camera"
    for serial, properties in found.items():
        url = properties["rtspStreamUrl"]
        assert properties["rtspStream"] is True
        assert url == f"rtsp://127.0.0.1:{bridge.rtsp.server.port}/{serial}"
        assert "sessionid" not in url and demo.doorbird.config.password not in url
        pictures, sound = await asyncio.to_thread(decode_with_sound, url, 50)
        assert pictures >= 50 and sound > 0  # H.264 as it came, the station's sound as AAC
    await until(lambda: bridge.driver.streams.active == 0)


async def test_three_players_share_one_upstream(house):
    demo, bridge = house
    serial = demo.doorbird.config.mac
    url = bridge.rtsp.url(serial)
    slots = demo.doorbird.device.slots
    first = threading.Event()
    alone = asyncio.create_task(asyncio.to_thread(decode, url, 60, "tcp", first))
    await until(first.is_set)
    one_player = slots.used
    assert one_player >= 1
    busiest = 0

    async def watch_slots() -> None:
        nonlocal busiest
        while True:
            busiest = max(busiest, slots.used)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch_slots())
    try:
        decoded = await asyncio.gather(alone, play(url, 50, "tcp"), play(url, 50, "udp"))
    finally:
        watcher.cancel()
    assert min(decoded) >= 50
    assert busiest == one_player  # the simulator serves one stream, however many play
    await until(lambda: slots.used == 0 and not bridge.rtsp.server.streaming(f"/{serial}"))


async def test_the_home_assistant_path_starts_waits_for_the_event_and_plays(house):
    demo, bridge = house
    serial = demo.doorbird.config.mac
    client = await Client.connect(bridge.url, schema=21, listen=True)
    try:
        assert (await client.ok("device.is_rtsp_livestreaming", serialNumber=serial)) == {
            "serialNumber": serial, "livestreaming": False}
        await client.ok("device.start_rtsp_livestream", serialNumber=serial)
        url = (await client.event("got rtsp url", timeout=15))["rtspUrl"]
        await client.event("rtsp livestream started", timeout=15, serialNumber=serial)
        assert url == bridge.rtsp.url(serial)
        assert (await client.ok("device.is_rtsp_livestreaming",
                                serialNumber=serial))["livestreaming"] is True
        assert await play(url, 50) >= 50
        await client.ok("device.stop_rtsp_livestream", serialNumber=serial)
        await client.event("rtsp livestream stopped", serialNumber=serial)
        await until(lambda: bridge.driver.streams.active == 0)
        assert (await client.ok("device.is_rtsp_livestreaming",
                                serialNumber=serial))["livestreaming"] is False
        commands = (await client.ok("device.get_commands", serialNumber=serial))["commands"]
        assert {"start_rtsp_livestream", "stop_rtsp_livestream",
                "is_rtsp_livestreaming"} <= set(commands)
    finally:
        await client.close()


# -- access ----------------------------------------------------------------------------------

def rtsp_status(host: str, port: int, path: str, headers: str = "") -> int:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"DESCRIBE rtsp://{host}:{port}{path} RTSP/1.0\r\nCSeq: 1\r\n"
                     f"Accept: application/sdp\r\n{headers}\r\n".encode())
        answer = sock.recv(4096).decode("latin-1")
    return int(answer.split()[1])


async def test_with_a_token_the_rtsp_server_requires_it(bridge_factory, backend):
    logged: list[LogRecord] = []
    remove = logs.hub.add_listener(logged.append)
    bridge = await bridge_factory([backend], auth_token=TOKEN)
    port = bridge.rtsp.server.port
    url = bridge.rtsp.url(DOUBLE)
    assert url == f"rtsp://eufy:{TOKEN}@127.0.0.1:{port}/{DOUBLE}"
    status = await asyncio.to_thread(rtsp_status, "127.0.0.1", port, f"/{DOUBLE}")
    assert status == 401
    wrong = "Authorization: Basic ZXVmeTp3cm9uZw==\r\n"  # eufy:wrong
    assert await asyncio.to_thread(rtsp_status, "127.0.0.1", port, f"/{DOUBLE}", wrong) == 401
    assert await asyncio.to_thread(rtsp_status, "127.0.0.1", port,
                                   f"/{DOUBLE}?token={TOKEN}") == 200
    assert await play(url, 20) >= 20
    client = await Client.connect(f"{bridge.url}/?token={TOKEN}", schema=21)
    try:
        properties = (await client.ok("device.get_properties",
                                      serialNumber=DOUBLE))["properties"]
    finally:
        await client.close()
    assert properties["rtspStreamUrl"] == url
    await bridge.stop()
    remove()
    assert logged and not [r for r in logged if TOKEN in repr(r)]  # never in a log line


# -- leaving ---------------------------------------------------------------------------------

class RawPlayer:
    """A player over RTP/TCP interleaved, by hand: it can tear down, vanish, or never read."""

    def __init__(self, url: str, receive_buffer: int | None = None) -> None:
        parts = urlsplit(url)
        self.url, self.cseq, self.session = url, 0, ""
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((parts.hostname, parts.port))

    def request(self, method: str, url: str, headers: str = "") -> str:
        self.cseq += 1
        session = f"Session: {self.session}\r\n" if self.session else ""
        self.sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\n{session}"
                          f"{headers}\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += self.sock.recv(1)
        text = answer.decode("latin-1")
        length = [int(line.split(":")[1]) for line in text.split("\r\n")
                  if line.lower().startswith("content-length:")]
        body = b""
        while length and len(body) < length[0]:
            body += self.sock.recv(length[0] - len(body))
        assert text.split()[1] == "200", text
        for line in text.split("\r\n"):
            if line.lower().startswith("session:"):
                self.session = line.split(":", 1)[1].split(";")[0].strip()
        return text + body.decode("latin-1")

    def start(self) -> None:
        sdp = self.request("DESCRIBE", self.url, "Accept: application/sdp\r\n")
        track = next(line.split(":", 1)[1] for line in sdp.split("\r\n")
                     if line.startswith("a=control:") and "trackID=0" in line)
        self.request("SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        self.request("PLAY", self.url)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("leaving", ["teardown", "dropped", "never reads"])
async def test_a_player_leaving_releases_every_task_and_socket(bridge, backend, leaving):
    server = bridge.rtsp.server
    before = resources()
    if leaving == "never reads":
        server.write_buffer_limit = 32 * 1024
    player = RawPlayer(bridge.rtsp.url(DOUBLE),
                       receive_buffer=4096 if leaving == "never reads" else None)
    await asyncio.to_thread(player.start)
    await until(lambda: backend.streams_started == 1 and server.players(f"/{DOUBLE}"))
    if leaving == "teardown":
        await asyncio.to_thread(player.request, "TEARDOWN", player.url)
    elif leaving == "never reads":
        def stalled() -> PlayerInfo:
            return server.players(f"/{DOUBLE}")[0]

        for _ in range(40):  # two seconds of media it does not read
            assert stalled().buffered < server.write_buffer_limit + 64 * 1024  # never more
            await asyncio.sleep(0.05)
        assert backend.streams_ended == 0  # the stream goes on meanwhile
    if leaving != "teardown":
        player.close()
    await until(lambda: backend.streams_ended == 1 and not server.streaming(f"/{DOUBLE}"))
    assert bridge.driver.streams.active == 0
    player.close()
    await settled(before)


async def test_an_upstream_that_dies_lets_its_players_go(bridge, backend):
    backend.stream_fails = 30
    server = bridge.rtsp.server
    player = RawPlayer(bridge.rtsp.url(DOUBLE))
    try:
        await asyncio.to_thread(player.start)
        await until(lambda: backend.streams_ended == 1)
        await until(lambda: not server.streaming(f"/{DOUBLE}") and not server.players(
            f"/{DOUBLE}"))
        player.sock.settimeout(PATIENCE)
        while await asyncio.to_thread(player.sock.recv, 65536):
            pass  # the bridge closed the connection: the player may come back
    finally:
        player.close()


# -- the station's own URL, when the user asks for it ----------------------------------------

async def test_a_doorbird_user_may_hand_out_the_stations_own_url(bridge_factory, monkeypatch):
    monkeypatch.setattr(doorbird_backend, "HANDED_SESSION_SECONDS", 0.5)
    config = DoorBirdConfig(event_ports=[free_udp_port(), free_udp_port()], rtsp_port=0,
                            rtsp_http_port=None)
    sim = DoorBirdSimulator(config)
    await sim.start()
    try:
        settings = DoorBirdSettings(
            host=sim.address, username=config.user, password=config.password,
            event_ports=config.event_ports, listen_host="127.0.0.1", rtsp_port=sim.rtsp_port,
            hand_out_station_rtsp=True)
        backend = DoorBirdBackend(settings)
        bridge = await bridge_factory([backend])
        monkeypatch.setattr(doorbird_backend, "HANDED_SESSION_SECONDS", 60.0)  # once only
        bell = bridge.driver.devices[config.mac]
        url = bell.properties["rtspStreamUrl"]
        session = url.split("sessionid=", 1)[1]
        assert bell.properties["rtspStream"] is True
        assert url.startswith(f"rtsp://{sim.address.split(':')[0]}:{sim.rtsp_port}/")
        assert session in sim.device.sessions
        # the station forgets a session after ten minutes: the URL is renewed before
        await until(lambda: bell.properties["rtspStreamUrl"] != url)
        url = bell.properties["rtspStreamUrl"]
        session = url.split("sessionid=", 1)[1]
        assert await play(url, 20) >= 20
        client = await Client.connect(bridge.url, schema=21, listen=True)
        try:  # the Home Assistant path plays the station's URL then
            await client.ok("device.start_rtsp_livestream", serialNumber=config.mac)
            assert (await client.event("got rtsp url"))["rtspUrl"] == url
            await client.event("rtsp livestream started")
        finally:
            await client.close()
        await bridge.stop()
        assert session not in sim.device.sessions  # given back when the bridge stops
    finally:
        await sim.stop()


def test_the_rtsp_server_answers_under_uvloop_as_the_bridge_runs():
    """The bridge runs on uvloop, whose transports are not asyncio's own classes."""

    async def describe_nothing() -> int:
        server = RtspServer(lambda path: None)
        await server.start()
        try:
            return await asyncio.to_thread(rtsp_status, "127.0.0.1", server.port, "/nothing")
        finally:
            await server.close()

    assert uvloop.run(describe_nothing()) == 404
