"""The SkyBell simulator's live-view signalling: it checks presigned URLs as Kinesis Video
Streams does, answers garbage without falling over, runs a real STUN responder and switches
faults at run time."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aioice import stun

from bridge import sigv4
from bridge.simulators.skybell import CloudConfig, SkyBellSimulator


@pytest.fixture
async def sim():
    simulator = SkyBellSimulator(CloudConfig(udp_port=0))
    await simulator.start()
    yield simulator
    await simulator.stop()


async def live_answer(sim: SkyBellSimulator) -> dict[str, Any]:
    device = next(iter(sim.cloud.devices.values()))
    async with aiohttp.ClientSession() as http, http.post(
            f"{sim.url}/api/v5/devices/{device.device_id}/videostream/", json={},
            headers={"x-skybell-user-api-key": sim.cloud.api_key}) as response:
        assert response.status == 201
        return (await response.json())["data"]


def signed_by_us(answer: dict[str, Any], *, channel: str | None = None,
                 now: datetime | None = None, secret: str | None = None) -> str:
    credentials = answer["credentials"]
    endpoint = next(e["ResourceEndpoint"] for e in answer["endpoints"]
                    if e["Protocol"] == "WSS")
    return sigv4.presign(endpoint, access_key=credentials["AccessKeyId"],
                         secret_key=secret or credentials["SecretAccessKey"],
                         session_token=credentials["SessionToken"], region="us-east-1",
                         service="kinesisvideo", now=now,
                         params={"X-Amz-ChannelARN": channel or answer["channelARN"],
                                 "X-Amz-ClientId": "test-viewer"})


async def handshake(url: str) -> int:
    """The HTTP status of a WebSocket upgrade to ``url`` (101 when it is accepted)."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_the_answer_is_shaped_as_the_real_clouds(sim):
    answer = await live_answer(sim)
    assert set(answer) >= {"state", "ice", "endpoints", "signed", "channelARN", "credentials",
                           "aws_region", "signedWSS", "signedHTTPS"}
    assert answer["channelARN"].startswith("arn:aws:kinesisvideo:us-east-1:")
    assert set(answer["credentials"]) == {"AccessKeyId", "SecretAccessKey", "SessionToken",
                                          "Expiration"}
    query = sigv4.query_of(answer["signedWSS"])
    assert query["X-Amz-Expires"] == "299" and query["X-Amz-SignedHeaders"] == "host"
    assert query["X-Amz-ChannelARN"] == answer["channelARN"]
    assert answer["ice"][0]["urls"].startswith("stun:")


async def test_the_given_url_and_one_signed_from_the_credentials_are_accepted(sim):
    answer = await live_answer(sim)
    assert await handshake(answer["signedWSS"]) == 101
    assert await handshake(signed_by_us(answer)) == 101


async def test_expired_forged_and_foreign_urls_are_refused(sim):
    answer = await live_answer(sim)
    an_hour_ago = datetime.fromtimestamp(time.time() - 3600, UTC)
    assert await handshake(signed_by_us(answer, now=an_hour_ago)) == 403
    assert await handshake(signed_by_us(answer, secret="not-the-secret")) == 403
    tampered = answer["signedWSS"].replace("X-Amz-Expires=299", "X-Amz-Expires=999")
    assert await handshake(tampered) == 403
    assert await handshake(answer["signedWSS"].split("?")[0]) == 403
    other = answer["channelARN"].rsplit("/", 1)[0] + "/1"
    assert await handshake(signed_by_us(answer, channel=other)) == 404


async def test_a_short_lived_url_expires(sim):
    sim.config.kvs_url_seconds = 1
    answer = await live_answer(sim)
    await asyncio.sleep(1.2)
    assert await handshake(answer["signedWSS"]) == 403
    assert await handshake(signed_by_us(answer)) == 101


async def test_garbage_on_the_channel_gets_a_status_answer_and_the_channel_stays(sim):
    answer = await live_answer(sim)
    async with aiohttp.ClientSession() as http, http.ws_connect(answer["signedWSS"]) as ws:
        for garbage in ("not json", json.dumps({"action": "SDP_OFFER"}),
                        json.dumps({"action": "SDP_OFFER", "messagePayload": "%%%"}),
                        json.dumps({"action": "SDP_OFFER", "messagePayload":
                                    base64.b64encode(b'{"sdp": 5}').decode()})):
            await ws.send_str(garbage)
            reply = await ws.receive_json(timeout=5)
            assert reply["messageType"] == "STATUS_RESPONSE"
            assert reply["statusResponse"]["statusCode"] == "400"
        await ws.send_bytes(b"\x00" * 100_000)  # beyond the frame limit: the channel closes
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR)


async def test_faults_switch_at_run_time_and_unknown_ones_change_nothing(sim):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.url}/_sim/faults", json={"kvs_refuse": True}) as response:
            assert await response.json() == {"kvs_refuse": True}
        answer = await live_answer(sim)
        assert await handshake(answer["signedWSS"]) == 403
        async with http.post(f"{sim.url}/_sim/faults", json={"no_such_fault": 1}) as response:
            assert response.status == 400
        async with http.post(f"{sim.url}/_sim/faults", json={"kvs_refuse": False}) as response:
            assert await response.json() == {}
        assert await handshake(answer["signedWSS"]) == 101


async def test_the_stun_server_tells_a_client_its_address(sim):
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.sendto(bytes(request), ("127.0.0.1", sim.kvs.stun.port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 1500), 5)
        response = stun.parse_message(data)
        assert response.transaction_id == request.transaction_id
        assert response.attributes["XOR-MAPPED-ADDRESS"] == sock.getsockname()
        sock.sendto(b"garbage", ("127.0.0.1", sim.kvs.stun.port))  # ignored, not fatal
        sock.sendto(bytes(request), ("127.0.0.1", sim.kvs.stun.port))
        assert stun.parse_message(await asyncio.wait_for(loop.sock_recv(sock, 1500), 5))
