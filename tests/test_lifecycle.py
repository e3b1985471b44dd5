"""The driver's lifecycle has one owner: connects, disconnects and refreshes in any order, from
any number of clients, end in the state last asked for, with every command answered once and
nothing of a stopped backend left running."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import stat
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.driver import Driver
from bridge.logs import LogRecord, hub
from bridge.settings import load_settings
from bridge.storage import StateStore
from bridge.tasks import BackgroundTasks
from tests.doubles import LOCK, DoorbellBackend
from tests.wsclient import Client

STORM = ["driver.disconnect", "driver.poll_refresh", "driver.connect", "driver.disconnect",
         "driver.connect", "driver.poll_refresh", "driver.disconnect", "driver.connect",
         "driver.is_connected"]


async def send_all(client: Client, commands: list[str]) -> list[dict[str, Any]]:
    """Send every command without waiting, then collect the answers by message id."""
    ids = [f"storm-{i}" for i in range(len(commands))]
    futures = []
    for message_id, command in zip(ids, commands, strict=True):
        future = asyncio.get_running_loop().create_future()
        client.results[message_id] = future
        futures.append(future)
        await client.ws.send(json.dumps({"messageId": message_id, "command": command}))
    return list(await asyncio.wait_for(asyncio.gather(*futures), 60))


def backend_tasks(bridge: Bridge) -> int:
    return sum(len(b._tasks) for b in bridge.driver.backends)  # type: ignore[attr-defined]


def bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def event_ports(bridge: Bridge) -> list[tuple[str, int]]:
    doorbird, skybell = bridge.driver.backends
    return [(doorbird.settings.listen_host, p)  # type: ignore[attr-defined]
            for p in doorbird.settings.event_ports] + [  # type: ignore[attr-defined]
        (skybell.settings.udp_listen, skybell.settings.udp_port)]  # type: ignore[attr-defined]


async def test_a_storm_of_lifecycle_commands_is_answered_in_full_and_ends_as_last_asked(demo):
    watcher = await Client.connect(demo.url, schema=21, listen=True)
    stormer = await Client.connect(demo.url, schema=21)
    running_tasks = backend_tasks(demo)
    assert running_tasks > 0

    assert await stormer.ok("driver.disconnect") == {}
    assert backend_tasks(demo) == 0
    answers = await send_all(stormer, STORM)

    assert [a["messageId"] for a in answers] == [f"storm-{i}" for i in range(len(STORM))]
    assert all(a["success"] for a in answers), answers
    assert answers[STORM.index("driver.is_connected")]["result"] in ({"connected": True},
                                                                      {"connected": False})
    assert answers[len(STORM) - 2]["result"] == {"result": True}  # the last connect
    assert demo.driver.connected is True
    assert (await stormer.ok("driver.is_connected")) == {"connected": True}
    await asyncio.sleep(0.3)
    assert not stormer.unmatched, "a command was answered twice"
    changes = [e["event"] for e in watcher.drain() if e["event"] in ("connected",
                                                                      "disconnected")]
    assert changes[0] == "disconnected" and changes.count("disconnected") >= 1
    assert all(a != b for a, b in itertools.pairwise(changes)), changes
    assert changes[-1] == "connected"
    assert backend_tasks(demo) == running_tasks
    assert (await watcher.ok("driver.is_push_connected"))["connected"] is True

    # the other way round: the last request is a disconnect, and nothing is left behind
    answers = await send_all(stormer, STORM[:-2])
    assert all(a["success"] for a in answers), answers
    assert demo.driver.connected is False
    assert (await stormer.ok("driver.is_connected")) == {"connected": False}
    assert backend_tasks(demo) == 0
    assert all(bindable(host, port) for host, port in event_ports(demo))
    await stormer.close()
    await watcher.close()


async def test_a_command_in_flight_when_its_backend_stops_is_still_answered(demo):
    client = await Client.connect(demo.url, schema=21)
    lock = next(s for s, d in demo.driver.devices.items() if d.type == 51 or "-R" in s)
    sends = [client.command("device.unlock", serialNumber=lock),
             client.command("driver.poll_refresh"),
             client.command("driver.get_history_events"),
             client.command("driver.disconnect")]
    replies = await asyncio.wait_for(asyncio.gather(*sends), 30)
    assert len(replies) == 4
    for reply in replies:
        assert reply["success"] or reply["errorCode"] not in ("", None), reply
    assert demo.driver.connected is False
    await client.close()


class SlowStart(DoorbellBackend):
    """A backend whose vendor takes a long time to answer at start."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.starts = 0
        self.cancelled_starts = 0
        self.stops = 0

    async def start(self, driver: Driver) -> None:
        self.starts += 1
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled_starts += 1
            raise
        await super().start(driver)

    async def stop(self) -> None:
        self.stops += 1
        await super().stop()


async def test_a_disconnect_cancels_a_start_in_progress(bridge_factory):
    bridge = await bridge_factory([])
    slow = SlowStart(3600)
    bridge.driver.backends.append(slow)
    client = await Client.connect(bridge.url, schema=21)
    await client.ok("driver.disconnect")
    connecting = asyncio.ensure_future(client.command("driver.connect"))
    while slow.starts == 0:
        await asyncio.sleep(0.01)
    assert await client.ok("driver.disconnect") == {}
    assert (await connecting)["result"] == {"result": False}
    assert slow.cancelled_starts == 1 and slow.stops >= 1
    assert bridge.driver.connected is False
    await client.close()


async def test_a_start_that_never_answers_ends_before_the_command_times_out(bridge_factory):
    bridge = await bridge_factory([], command_timeout=2.0)
    slow = SlowStart(3600)
    bridge.driver.backends.append(slow)
    client = await Client.connect(bridge.url, schema=21, listen=True)
    await client.ok("driver.disconnect")
    reply = await client.command("driver.connect", timeout=10)
    assert reply["success"] is True, reply
    error = await client.event("connection error")
    assert error["error"]["vendor"] == "test"
    assert slow.cancelled_starts == 1 and slow.stops >= 1
    await client.close()


class SlowRefresh(DoorbellBackend):
    async def refresh(self) -> None:
        self.refreshes += 1
        await asyncio.sleep(0.5)


async def test_poll_refresh_is_shared_by_everyone_who_asks_while_it_runs(bridge_factory):
    backend = SlowRefresh()
    bridge = await bridge_factory([backend])
    clients = [await Client.connect(bridge.url, schema=21) for _ in range(5)]
    replies = await asyncio.gather(*(c.command("driver.poll_refresh") for c in clients
                                     for _ in range(4)))
    assert all(r["success"] for r in replies)
    assert backend.refreshes == 1
    await clients[0].ok("driver.disconnect")
    reply = await asyncio.wait_for(clients[1].command("driver.poll_refresh"), 0.5 * 4)
    assert reply["success"] is True and backend.refreshes == 1
    for client in clients:
        await client.close()


async def test_cancelling_background_tasks_reaches_late_spawns_and_keeps_the_callers_cancel():
    tasks = BackgroundTasks("test")
    late: list[asyncio.Task[Any]] = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            late.append(tasks.spawn(asyncio.sleep(3600)))  # spawned while cancelling
            await asyncio.sleep(0.05)

    tasks.spawn(stubborn())
    await asyncio.sleep(0)
    await tasks.cancel_all()
    assert late and late[0].cancelled() and len(tasks) == 0

    tasks.spawn(asyncio.sleep(3600))

    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(3600)  # refuses to end quickly

    tasks.spawn(slow_to_end())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await tasks.cancel_all()  # the caller's deadline is kept, not swallowed
    await tasks.cancel_all()


async def test_a_background_task_that_dies_is_logged_when_it_dies():
    tasks = BackgroundTasks("test")
    records: list[LogRecord] = []
    forget = hub.add_listener(records.append)

    async def broken() -> None:
        raise RuntimeError("boom")

    try:
        task = tasks.spawn(broken(), name="broken loop")
        await asyncio.wait([task])
        await asyncio.sleep(0)
    finally:
        forget()
    died = [r for r in records if r.message.startswith("background task died")]
    assert died and died[0].level == "error"
    assert died[0].fields["task"] == "broken loop" and "boom" in died[0].fields["error"]


async def test_state_is_saved_off_the_event_loop_and_the_directory_made_private(tmp_path):
    directory = tmp_path / "state"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    store = StateStore(directory)
    store.save("cursor", {"n": 1})
    store.save("cursor", {"n": 2})
    assert StateStore(directory).load("cursor") == {"n": 2}  # every reader sees the newest
    await store.flush()
    assert json.loads((directory / "cursor.json").read_text()) == {"n": 2}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "cursor.json").stat().st_mode) == 0o600


class SlowRelay(DoorbellBackend):
    """A door relay that takes a moment to answer, like a real one on a busy LAN."""

    async def run_command(self, entity: Any, command: str, params: dict[str, Any]) -> Any:
        await asyncio.sleep(0.3)
        return await super().run_command(entity, command, params)


async def test_a_flood_of_the_same_unlock_costs_the_device_one_request(bridge_factory):
    backend = SlowRelay()
    bridge = await bridge_factory([backend])
    clients = [await Client.connect(bridge.url, schema=21) for _ in range(4)]
    replies = await asyncio.gather(*(c.command("device.unlock", serialNumber=LOCK)
                                     for c in clients for _ in range(5)))
    assert all(r["success"] for r in replies), replies
    assert backend.commands == [(LOCK, "unlock", {})]
    await clients[0].ok("device.unlock", serialNumber=LOCK)  # a later one is a new request
    assert len(backend.commands) == 2
    for client in clients:
        await client.close()


@pytest.fixture
async def silent_server():
    """A TCP server that accepts and never answers: requests to it stay in flight."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_closing_a_vendor_client_ends_its_requests_as_unreachable(silent_server):
    from bridge.backends.doorbird.client import DoorBirdClient, Unreachable
    from bridge.backends.skybell.client import CloudUnavailable, SkyBellClient

    doorbird = DoorBirdClient(silent_server, "user", "secret", connection_interval=0)
    skybell = SkyBellClient(f"http://{silent_server}", api_key="key", retries=0)
    # more requests than connections: some wait in the pool, where closing cancels them
    calls = [asyncio.ensure_future(doorbird.info()) for _ in range(6)] + \
        [asyncio.ensure_future(skybell.devices()) for _ in range(3)]
    await asyncio.sleep(0.3)
    await doorbird.close()
    await skybell.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 20)
    assert [type(o) for o in outcomes] == [Unreachable] * 6 + [CloudUnavailable] * 3
    with pytest.raises(Unreachable):
        await doorbird.info()  # a closed client opens no new session
    assert doorbird._session is None


class StuckStop(DoorbellBackend):
    async def stop(self) -> None:
        await asyncio.sleep(3600)


async def test_shutdown_ends_within_its_limit_even_when_a_backend_will_not_stop():
    from bridge.app import SHUTDOWN_SECONDS

    bridge = Bridge(load_settings(**{"server.port": 0}), backends=[StuckStop(), SlowStart(0)])
    await bridge.start()
    client = await Client.connect(bridge.url, schema=21)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(bridge.stop(), SHUTDOWN_SECONDS * 4)
    assert loop.time() - began < SHUTDOWN_SECONDS * 2
    assert bridge.driver.connected is False
    await client.close()
