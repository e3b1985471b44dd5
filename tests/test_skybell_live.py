"""SkyBell live view and talkback for eufy clients: the bridge connects as a WebRTC viewer to the
SkyBell simulator's signalling channel and aiortc doorbell, over real sockets, and what clients
receive is proven with real decoders; what they say is measured at the doorbell."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import av
import pytest

from bridge.backends.skybell import SkyBellBackend
from bridge.backends.skybell.client import SkyBellClient
from bridge.media.audio import AacDecoder
from bridge.settings import SkyBellSettings
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator
from bridge.simulators.skybell.master import FPS, HEIGHT, TONE_HZ, WIDTH
from tests.media import media_events, payloads
from tests.test_doorbird_media import assert_plays, open_sockets
from tests.test_media_audio import pitch, samples_of
from tests.test_talkback import adts_tone, buffer
from tests.wsclient import PATIENCE, Client, until

FRONT = "A3BAB00001"


class Rig:
    """The SkyBell cloud simulator, a bridge with a SkyBell backend pointed at it, and eufy
    clients."""

    def __init__(self, sim: SkyBellSimulator, backend: SkyBellBackend, bridge: Any) -> None:
        self.sim, self.backend, self.bridge = sim, backend, bridge

    @property
    def device_id(self) -> str:
        return next(d.device_id for d in self.sim.cloud.devices.values() if d.serial == FRONT)

    async def client(self) -> Client:
        return await Client.connect(self.bridge.url, schema=21)

    async def sim_call(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as http, \
                http.request(method, self.sim.url + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def live(self) -> dict[str, Any]:
        return await self.sim_call("GET", f"/_sim/devices/{self.device_id}/live")

    async def faults(self, **faults: Any) -> None:
        await self.sim_call("POST", "/_sim/faults", faults)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def make_rig(bridge_factory):
    sims: list[SkyBellSimulator] = []

    async def make(*, stall: float = 10.0, **sim_options: Any) -> Rig:
        sim = SkyBellSimulator(CloudConfig(udp_port=free_udp_port(), **sim_options))
        await sim.start()
        sims.append(sim)
        settings = SkyBellSettings(base_url=sim.url, api_key=sim.cloud.api_key, udp_port=0,
                                   poll_interval=30, live_stall_seconds=stall)
        backend = SkyBellBackend(settings)
        backend.client = SkyBellClient(sim.url, api_key=sim.cloud.api_key, backoff=0.05,
                                       timeout=5)
        backend.live._client = backend.client
        return Rig(sim, backend, await bridge_factory([backend]))

    yield make
    for sim in sims:
        await sim.stop()


# -- live view -------------------------------------------------------------------------------

async def test_the_doorbell_advertises_live_view_talkback_and_rtsp(make_rig):
    rig = await make_rig()
    client = await rig.client()
    commands = (await client.ok("device.get_commands", serialNumber=FRONT))["commands"]
    assert {"start_livestream", "stop_livestream", "start_talkback", "talkback_audio_data",
            "stop_talkback", "start_rtsp_livestream"} <= set(commands)
    props = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"]
    assert props["rtspStream"] is True and props["rtspStreamUrl"].endswith(f"/{FRONT}")


async def test_the_live_view_decodes_from_the_events_alone(make_rig):
    rig = await make_rig()
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await client.event("livestream started")
    events = await media_events(client, "video", 60)
    assert_plays(events, FPS)
    assert (events[0]["metadata"]["videoWidth"], events[0]["metadata"]["videoHeight"]) == (
        WIDTH, HEIGHT)
    assert (await rig.live())["viewers"] == 1
    sound = await media_events(client, "audio", 25)
    decoder = AacDecoder()
    frames = [f for data in payloads(sound) for f in decoder.decode(data)]
    assert abs(pitch(samples_of(frames), frames[0].sample_rate) - TONE_HZ) < 20


async def test_two_connections_share_one_peer_connection(make_rig):
    rig = await make_rig()
    first, second = await rig.client(), await rig.client()
    await first.ok("device.start_livestream", serialNumber=FRONT)
    await second.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(second, "video", 20)
    live = await rig.live()
    assert (live["viewers"], live["peer_connections"]) == (1, 1)
    await first.ok("device.stop_livestream", serialNumber=FRONT)
    await media_events(second, "video", 10)  # the other connection keeps watching
    await second.ok("device.stop_livestream", serialNumber=FRONT)
    await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)


async def test_an_expired_signed_url_is_replaced_by_one_the_bridge_signs(make_rig):
    rig = await make_rig(kvs_url_seconds=1)
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    assert_plays(await media_events(client, "video", 20), FPS)


async def test_the_rtsp_url_plays_while_a_client_watches_on_one_peer_connection(make_rig):
    rig = await make_rig()
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 5)
    url = (await client.ok("device.get_properties", serialNumber=FRONT))["properties"][
        "rtspStreamUrl"]

    def play() -> int:
        with av.open(url, options={"rtsp_transport": "tcp"}, timeout=PATIENCE) as container:
            decoded = 0
            for frame in container.decode(video=0):
                assert (frame.width, frame.height) == (WIDTH, HEIGHT)
                decoded += 1
                if decoded >= 50:
                    return decoded
        return decoded

    assert await asyncio.to_thread(play) >= 50
    await media_events(client, "video", 5)
    assert (await rig.live())["peer_connections"] == 1


async def test_stopping_leaves_no_task_no_socket_and_no_peer_connection(make_rig):
    rig = await make_rig()
    client = await rig.client()
    await client.ok("device.is_livestreaming", serialNumber=FRONT)
    await asyncio.sleep(0.5)
    tasks, sockets = len(asyncio.all_tasks()), open_sockets()
    for _ in range(2):
        await client.ok("device.start_livestream", serialNumber=FRONT)
        await media_events(client, "video", 5)
        await client.ok("device.stop_livestream", serialNumber=FRONT)
        await client.event("livestream stopped")
        await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)
        assert not rig.sim.cloud.devices[rig.device_id].streaming
    await until(lambda: len(asyncio.all_tasks()) <= tasks and open_sockets() <= sockets)


# -- trouble ---------------------------------------------------------------------------------

async def test_an_offline_doorbell_answers_a_connection_timeout_at_once(make_rig):
    rig = await make_rig()
    await rig.sim_call("POST", f"/_sim/devices/{rig.device_id}/offline")
    client = await rig.client()
    started = time.monotonic()
    result = await client.command("device.start_livestream", serialNumber=FRONT)
    assert result["errorCode"] == "station_connection_timeout"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("fault", ["kvs_refuse", "kvs_ice_fail"])
async def test_a_refused_channel_or_failed_ice_answers_an_error_and_leaves_nothing(
        make_rig, fault):
    rig = await make_rig()
    client = await rig.client()
    await client.ok("device.is_livestreaming", serialNumber=FRONT)
    tasks, sockets = len(asyncio.all_tasks()), open_sockets()
    await rig.faults(**{fault: True})
    started = time.monotonic()
    result = await client.command("device.start_livestream", serialNumber=FRONT)
    assert result["errorCode"] == "station_connection_timeout"
    assert time.monotonic() - started < 12
    assert not (await client.ok("device.is_livestreaming", serialNumber=FRONT))[
        "livestreaming"]
    await rig.faults(**{fault: False})
    await until(lambda: len(asyncio.all_tasks()) <= tasks and open_sockets() <= sockets)
    await client.ok("device.start_livestream", serialNumber=FRONT)  # recovered
    await media_events(client, "video", 5)


async def test_a_stalled_stream_ends_with_livestream_stopped(make_rig):
    rig = await make_rig(stall=1.5)
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 5)
    await rig.faults(kvs_stall=True)
    started = time.monotonic()
    await client.event("livestream stopped")
    assert time.monotonic() - started < 4
    await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)


# -- talkback --------------------------------------------------------------------------------

async def test_a_clients_tone_reaches_the_doorbell_at_its_pitch(make_rig):
    rig = await make_rig()
    client = await rig.client()
    await client.ok("device.start_talkback", serialNumber=FRONT)
    await client.event("talkback started")
    for frame in adts_tone(1000, seconds=2.0):
        await client.ok("device.talkback_audio_data", serialNumber=FRONT,
                        buffer=buffer(frame))
        await asyncio.sleep(0.06)
    live = await rig.live()
    assert abs(live["received_audio_hz"] - 1000) <= 20
    assert live["peer_connections"] == 1
    other = await rig.client()
    refused = await other.command("device.start_talkback", serialNumber=FRONT)
    assert refused["errorCode"] == "device_only_one_talkback_at_a_time"
    await client.ok("device.stop_talkback", serialNumber=FRONT)
    await until(lambda: not rig.sim.kvs.live[rig.device_id].masters)


async def test_talk_and_view_share_the_peer_connection(make_rig):
    rig = await make_rig()
    client = await rig.client()
    await client.ok("device.start_livestream", serialNumber=FRONT)
    await media_events(client, "video", 5)
    await client.ok("device.start_talkback", serialNumber=FRONT)
    for frame in adts_tone(1000, seconds=1.0):
        await client.ok("device.talkback_audio_data", serialNumber=FRONT,
                        buffer=buffer(frame))
    await client.ok("device.stop_talkback", serialNumber=FRONT)
    await media_events(client, "video", 5)  # the view goes on after the talk
    assert (await rig.live())["peer_connections"] == 1
