"""Who may talk to the bridge: browsers only from the bridge's own page (or listed hosts and
origins), no DNS rebinding, the optional client token, wss://, and an audit line for every
door action."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme
import websockets
from websockets.exceptions import InvalidStatus

from bridge import logs
from bridge.logs import LogRecord
from tests.doubles import LOCK, DoorbellBackend
from tests.wsclient import Client

TOKEN = "kitchen-door-7f3a9c"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def request(bridge, *, path: str = "/", host: str | None = None,
                  origin: str | None = None, method: str = "GET", upgrade: bool = False,
                  headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """One raw HTTP request with exactly the Host and Origin a browser (or an attacker)
    would send; the answer's status line, headers and (for plain HTTP) body."""
    reader, writer = await asyncio.open_connection(bridge.server.host, bridge.server.port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{bridge.server.port}'}"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode().split("\r\n")
            fields = {}
            for line in filter(None, header_lines):
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            body = b"" if upgrade and status_line.split()[1] == "101" else \
                await reader.readexactly(int(fields.get("content-length", "0")))
    finally:
        writer.close()
    return Answer(int(status_line.split()[1]), fields, body)


@pytest.fixture
def records() -> Iterator[list[LogRecord]]:
    """Every log record while the test runs, as clients and the console would get them."""
    got: list[LogRecord] = []
    remove = logs.hub.add_listener(got.append)
    yield got
    remove()


def refused(records: list[LogRecord], reason: str) -> list[LogRecord]:
    return [r for r in records if r.message == "request refused" and r.fields["reason"] == reason]


def own(bridge) -> str:
    return f"http://127.0.0.1:{bridge.server.port}"


# ------------------------------------------------------------------ origins and hosts
async def test_a_web_page_elsewhere_cannot_open_a_websocket(bridge, records):
    answer = await request(bridge, upgrade=True, origin="http://evil.example")
    assert answer.status == 403
    [line] = refused(records, "origin not allowed")
    assert line.level == "warn" and line.fields["origin"] == "http://evil.example"
    assert line.fields["peer"].startswith("127.0.0.1:")
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(bridge.url, origin="http://evil.example")
    assert caught.value.response.status_code == 403


async def test_a_rebinding_host_cannot_open_a_websocket_from_its_own_page(bridge, records):
    """A page on attacker.example, its name then pointed at 127.0.0.1: same origin for the
    browser, but no IP address, localhost or listed name in Host."""
    name = f"attacker.example:{bridge.server.port}"
    answer = await request(bridge, upgrade=True, host=name, origin=f"http://{name}")
    assert answer.status == 403
    assert refused(records, "origin not allowed")


async def test_a_rebinding_host_is_not_served_the_page(bridge, records):
    answer = await request(bridge, host=f"attacker.example:{bridge.server.port}")
    assert answer.status == 403 and b"<script>" not in answer.body
    [line] = refused(records, "host not allowed")
    assert line.fields["host"] == f"attacker.example:{bridge.server.port}"


async def test_the_page_is_served_with_a_frame_ancestors_policy(bridge):
    for host in (f"127.0.0.1:{bridge.server.port}", f"localhost:{bridge.server.port}",
                 f"[::1]:{bridge.server.port}"):
        answer = await request(bridge, host=host)
        assert answer.status == 200 and b"start_listening" in answer.body
        assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]


async def test_the_page_opens_its_websocket_on_an_address_or_localhost(bridge):
    port = bridge.server.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"192.0.2.7:{port}"):
        answer = await request(bridge, upgrade=True, host=host, origin=f"http://{host}")
        assert answer.status == 101, host
    with pytest.raises(InvalidStatus):  # same host, other port: another site
        await websockets.connect(bridge.url, origin=f"http://127.0.0.1:{port + 1}")
    async with websockets.connect(bridge.url, origin=own(bridge)) as ws:
        assert json.loads(await ws.recv())["type"] == "version"


async def test_eufy_clients_send_no_origin_and_connect_under_any_name(bridge):
    answer = await request(bridge, upgrade=True, host="eufy-bridge:3000")
    assert answer.status == 101
    client = await Client.connect(bridge.url, schema=21)
    assert await client.ok("driver.is_connected") == {"connected": True}
    await client.close()


async def test_listed_host_names_and_origins_are_let_in(bridge_factory):
    bridge = await bridge_factory(allowed_hosts=["Bridge.LAN"],
                                  allowed_origins=["https://ha.example:8123"])
    name = f"bridge.lan:{bridge.server.port}"
    assert (await request(bridge, host=name)).status == 200
    assert (await request(bridge, upgrade=True, host=name, origin=f"http://{name}")).status == 101
    assert (await request(bridge, upgrade=True, origin="https://ha.example:8123")).status == 101
    assert (await request(bridge, upgrade=True, origin="http://ha.example:8123")).status == 403
    assert (await request(bridge, upgrade=True, origin="null")).status == 403


async def test_health_and_metrics_answer_any_host_but_not_other_sites(bridge):
    for path in ("/healthz", "/metrics"):
        assert (await request(bridge, path=path, host="eufy-bridge:3000")).status == 200
        assert (await request(bridge, path=path, origin="http://evil.example")).status == 403


# ------------------------------------------------------------------ demo-only routes
async def test_demo_routes_do_not_exist_outside_demo_mode(bridge):
    assert not any(p.startswith("/demo") for p in bridge.server.http_routes)
    assert not bridge.server.action_routes
    assert (await request(bridge, path="/demo/devices")).status == 426
    # websockets' own answer to a POST that is no upgrade
    assert (await request(bridge, path="/demo/ring?serial=x", method="POST")).status == 405


async def test_demo_actions_are_posts_from_the_page_only(demo):
    serials = json.loads((await request(demo, path="/demo/devices")).body)
    path = f"/demo/ring?serial={next(iter(serials))}"
    assert (await request(demo, path=path)).status == 405  # an <img src> cannot ring
    assert (await request(demo, path=path, method="POST",
                          origin="http://evil.example")).status == 403
    assert (await request(demo, path=path, method="POST", origin=own(demo))).status == 200


# ------------------------------------------------------------------ the client token
@pytest.fixture
async def guarded(bridge_factory, backend: DoorbellBackend):
    return await bridge_factory([backend], auth_token=TOKEN)


async def test_without_the_token_a_client_is_refused(guarded, records):
    answer = await request(guarded, upgrade=True)
    assert answer.status == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert refused(records, "missing or wrong token")
    with pytest.raises(InvalidStatus) as caught:
        await websockets.connect(guarded.url)
    assert caught.value.response.status_code == 401


async def test_a_wrong_token_is_refused_in_the_header_and_in_the_url(guarded):
    for url, headers in ((guarded.url, {"Authorization": f"Bearer {TOKEN}x"}),
                         (guarded.url + "/?token=" + TOKEN[:-1], None),
                         (guarded.url, {"Authorization": f"Basic {TOKEN}"})):
        with pytest.raises(InvalidStatus) as caught:
            await websockets.connect(url, additional_headers=headers)
        assert caught.value.response.status_code == 401


async def test_the_right_token_lets_a_client_in_by_header_or_by_url(guarded):
    async with websockets.connect(guarded.url,
                                  additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "version"
    client = await Client.connect(f"{guarded.url}/?token={TOKEN}", schema=21)
    assert await client.ok("driver.is_connected") == {"connected": True}
    await client.close()


async def test_with_a_token_the_page_loads_and_passes_the_token_on(guarded):
    """The page holds no secret: it loads without the token, reads it from its own address
    (#token= or ?token=) and hands it to its WebSocket and its demo buttons."""
    page = await request(guarded)
    assert page.status == 200
    assert b'get("token")' in page.body and b"withToken(" in page.body
    answer = await request(guarded, upgrade=True, origin=own(guarded), path=f"/?token={TOKEN}")
    assert answer.status == 101


async def test_the_token_never_appears_in_logs(guarded, records):
    await request(guarded, upgrade=True, path=f"/?token={TOKEN}x", origin="http://evil.example")
    await request(guarded, upgrade=True, path=f"/?token={TOKEN}x")
    await request(guarded, upgrade=True, headers=(("Authorization", f"Bearer {TOKEN}x"),))
    client = await Client.connect(f"{guarded.url}/?token={TOKEN}", schema=21)
    await client.ok("device.unlock", serialNumber=LOCK)
    await client.close()
    assert len(refused(records, "missing or wrong token")) == 2
    assert records and not [r for r in records if TOKEN in repr(r)]
    assert TOKEN not in repr(guarded.server.access)
    assert TOKEN not in repr(guarded.settings)


# ------------------------------------------------------------------ binding and TLS
async def test_listening_beyond_loopback_without_a_token_warns(bridge_factory, records):
    await bridge_factory(host="127.0.0.1")
    await bridge_factory(host="0.0.0.0", auth_token=TOKEN)
    assert not [r for r in records if r.level == "warn"]
    await bridge_factory(host="0.0.0.0")
    [warning] = [r for r in records if r.level == "warn"]
    assert "unlock doors" in warning.message and "auth_token" in warning.message


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[trustme.CA, str, str]:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(cert, append=True)
    issued.private_key_pem.write_to_path(key)
    return ca, str(cert), str(key)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_a_wss_connection_with_a_test_certificate(bridge_factory, certificate):
    ca, cert, key = certificate
    bridge = await bridge_factory(tls_cert=cert, tls_key=key, auth_token=TOKEN)
    assert bridge.url.startswith("wss://127.0.0.1:")
    context = client_context(ca)
    async with websockets.connect(bridge.url, ssl=context,
                                  additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "version"
        await ws.send(json.dumps({"messageId": "1", "command": "driver.is_connected"}))
        assert json.loads(await ws.recv())["result"] == {"connected": True}
    with pytest.raises(InvalidStatus):  # TLS does not stand in for the token
        await websockets.connect(bridge.url, ssl=context)
    with pytest.raises((OSError, websockets.InvalidHandshake, EOFError)):  # no plain ws://
        await websockets.connect(bridge.url.replace("wss://", "ws://"), open_timeout=10)


async def test_the_page_over_https_may_open_its_wss(bridge_factory, certificate):
    ca, cert, key = certificate
    bridge = await bridge_factory(tls_cert=cert, tls_key=key)
    origin = f"https://127.0.0.1:{bridge.server.port}"
    async with websockets.connect(bridge.url, ssl=client_context(ca), origin=origin) as ws:
        assert json.loads(await ws.recv())["type"] == "version"
    with pytest.raises(InvalidStatus):  # the plain-http page of the same host is another site
        await websockets.connect(bridge.url, ssl=client_context(ca),
                                 origin=f"http://127.0.0.1:{bridge.server.port}")


# ------------------------------------------------------------------ audit trail
async def test_unlocking_and_opening_are_logged_with_the_clients_address(bridge, records):
    client = await Client.connect(bridge.url, schema=21)
    host, port = client.ws.local_address[:2]
    address = f"{host}:{port}"
    await client.ok("device.unlock", serialNumber=LOCK)
    await client.ok("device.open", serialNumber=LOCK)
    await client.ok("device.get_properties", serialNumber=LOCK)
    await client.close()
    lines = [r for r in records if r.message == "door action"]
    assert [(r.level, r.fields["action"], r.fields["serialNumber"], r.fields["peer"])
            for r in lines] == [("info", "unlock", LOCK, address), ("info", "open", LOCK, address)]


async def test_relay_writes_are_logged_and_a_passcode_never_is(demo, records):
    client = await Client.connect(demo.url, schema=21, listen=True)
    having: dict[str, str] = {}
    for serial in client.state["devices"]:
        metadata = await client.ok("device.get_properties_metadata", serialNumber=serial)
        for name in ("relayPasscode", "locked"):
            if name in metadata["properties"]:
                having.setdefault(name, serial)
    await client.ok("device.set_property", serialNumber=having["relayPasscode"],
                    name="relayPasscode", value=918273)
    relay = having["locked"]
    await client.ok("device.set_property", serialNumber=relay, name="locked", value=False)
    await client.close()
    lines = [r for r in records if r.message == "door action"]
    assert [r.fields["action"] for r in lines] == ["set relayPasscode", "set locked"]
    assert "value" not in lines[0].fields and lines[1].fields["value"] is False
    assert not [r for r in records if "918273" in repr(r)]
