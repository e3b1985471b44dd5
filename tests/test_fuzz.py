"""Generated commands and mutations of them, across all schemas: every message that parses as
JSON gets exactly one result carrying its messageId, and other connections keep working."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

import schemas
from bridge import logs
from bridge.app import Bridge
from bridge.demo import Demo
from bridge.settings import load_settings
from tests.doubles import DOORBELL, LOCK, DoorbellBackend

CATALOG = schemas.load()
NAMES = sorted(CATALOG.commands)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=8,
)

GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.sampled_from([DOORBELL, LOCK, "light", "unlock", "debug", "x",
                               # the demo's DoorBird, its relay, and a SkyBell doorbell
                               "1CCAE3711111", "1CCAE3711111-R1", "A3BAB00001"]),
    "number": st.sampled_from([0, 1, 5, 50, 100, 2.5]),
    "integer": st.integers(0, 30),
    "boolean": st.booleans(),
    "buffer": st.lists(st.integers(0, 255), max_size=8).map(
        lambda data: {"type": "Buffer", "data": data}),
    "date": st.sampled_from(["20260101", "2026-02-03", "yesterday"]),
    "object": st.dictionaries(st.sampled_from(["deviceSN", "stationSN"]),
                              st.sampled_from([DOORBELL, "X"]), max_size=2),
    "array": st.lists(st.integers(0, 9), max_size=3),
    "any": json_values,
}


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A catalog command with its parameters: right, missing, wrong, or extra."""
    name = draw(st.sampled_from(NAMES) if draw(st.integers(0, 9)) else st.text(max_size=20))
    message: dict[str, Any] = {"command": name}
    spec = CATALOG.command(name)
    for param in spec.params if spec else ():
        choice = draw(st.sampled_from(["good", "good", "good", "missing", "garbage"]))
        if choice == "good":
            message[param.name] = draw(
                st.sampled_from(param.enum) if param.enum else GOOD_VALUES[param.type])
        elif choice == "garbage":
            message[param.name] = draw(json_values)
    if draw(st.booleans()):
        message.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
        message["command"] = name
    return message


message_ids = st.one_of(st.text(max_size=10), st.integers(-1000, 1000),
                        st.floats(allow_nan=False, allow_infinity=False),
                        st.just(None), st.lists(st.integers(), max_size=2))


@pytest.fixture(scope="module", params=["backend double", "demo backends"])
def running_bridge(request, tmp_path_factory) -> Iterator[str]:
    """A bridge on its own event loop in a thread, so that hypothesis can drive it
    synchronously: once with the backend double, once with the real DoorBird and SkyBell
    backends against their simulators."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        settings_ = load_settings(**{"server.port": 0, "server.command_timeout": 1.0,
                                     "server.event_seconds": 0.05,
                                     "server.data_dir": tmp_path_factory.mktemp("fuzz")})
        demo = None
        if request.param == "demo backends":
            demo = Demo(visitors=None)
            await demo.start()
            bridge = Bridge(demo.settings(settings_))
        else:
            bridge = Bridge(settings_, backends=[DoorbellBackend()])
        await bridge.start()
        holder["bridge"], holder["stop"] = bridge, asyncio.Event()
        ready.set()
        await holder["stop"].wait()
        await bridge.stop()
        if demo is not None:
            await demo.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30)
    yield holder["bridge"].url
    loop.call_soon_threadsafe(holder["stop"].set)
    thread.join(10)
    logs.hub.set_level("info")


def results_until(ws: ClientConnection, wanted: set[str]) -> list[dict[str, Any]]:
    """Read until every sentinel in ``wanted`` has been answered; return the other results."""
    others = []
    while wanted:
        message = json.loads(ws.recv(timeout=5))
        if message.get("type") != "result":
            continue
        if isinstance(message.get("messageId"), str) and message["messageId"] in wanted:
            assert message["success"] is True
            wanted.discard(message["messageId"])
        else:
            others.append(message)
    return others


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schema=st.integers(0, 21) | st.sampled_from([-1, 22]), command=commands(),
       message_id=message_ids, id_present=st.booleans())
def test_every_json_message_gets_exactly_one_result(running_bridge, schema, command,
                                                    message_id, id_present):
    with connect(running_bridge) as ws, connect(running_bridge) as bystander:
        ws.recv(timeout=5)
        bystander.recv(timeout=5)
        ws.send(json.dumps({"messageId": "__schema__", "command": "set_api_schema",
                            "schemaVersion": schema}))
        json.loads(ws.recv(timeout=5))
        if id_present:
            command["messageId"] = message_id
        else:
            command.pop("messageId", None)
        ws.send(json.dumps(command))
        ws.send(json.dumps({"messageId": "__sentinel1__", "command": "driver.is_connected"}))
        answers = results_until(ws, {"__sentinel1__"})
        if not answers:  # an action still waiting for its backend (bounded by the timeout)
            answers = [json.loads(ws.recv(timeout=5))]
            while answers[-1].get("type") != "result":
                answers = [json.loads(ws.recv(timeout=5))]
        ws.send(json.dumps({"messageId": "__sentinel2__", "command": "driver.is_connected"}))
        answers += results_until(ws, {"__sentinel2__"})

        assert len(answers) == 1, answers
        (answer,) = answers
        event(answer.get("errorCode", "success"))
        if id_present:
            assert answer["messageId"] == message_id
            assert type(answer["messageId"]) is type(message_id)
        else:
            assert "messageId" not in answer
        if answer["success"]:
            assert isinstance(answer["result"], dict)
        else:
            assert answer["errorCode"] in CATALOG.error_codes
            assert answer["errorCode"] != "unknown_error", (command, answer)

        bystander.send(json.dumps({"messageId": "b", "command": "driver.is_connected"}))
        assert json.loads(bystander.recv(timeout=5))["messageId"] == "b"


LIFECYCLE = ["driver.connect", "driver.disconnect", "driver.poll_refresh"]


@st.composite
def connection_plans(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]], int | None, bool]:
    """One connection's schema, the messages it sends without waiting (generated commands
    and lifecycle commands), after how many it goes away (if it does), and how."""
    schema = draw(st.integers(0, 21))
    messages = draw(st.lists(
        st.one_of(commands(), st.sampled_from(LIFECYCLE).map(lambda name: {"command": name})),
        min_size=1, max_size=10))
    leaves_after = draw(st.none() | st.integers(0, len(messages) - 1))
    return schema, messages, leaves_after, draw(st.booleans())


def read_answers(ws: ClientConnection, wanted: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every result with an id in ``wanted``, until each has one, then up to a sentinel sent
    afterwards (so that a second answer to any of them would be seen)."""
    answers: dict[str, list[dict[str, Any]]] = {}
    while not wanted <= answers.keys():
        message = json.loads(ws.recv(timeout=20))
        if message.get("type") == "result":
            answers.setdefault(message.get("messageId"), []).append(message)
    ws.send(json.dumps({"messageId": "__sentinel__", "command": "driver.is_connected"}))
    while True:
        message = json.loads(ws.recv(timeout=20))
        if message.get("type") != "result":
            continue
        if message.get("messageId") == "__sentinel__":
            return answers
        answers.setdefault(message.get("messageId"), []).append(message)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=st.lists(connection_plans(), min_size=2, max_size=4))
def test_every_accepted_message_is_answered_exactly_once_across_connections(running_bridge,
                                                                           plans):
    """Several connections at several schemas send valid and invalid commands, connect,
    disconnect and refresh the driver, interleaved and without waiting; some go away in the
    middle. Each message on a connection that stays is answered exactly once, with a result
    or an error code of the catalog, and the bridge goes on serving."""
    with contextlib.ExitStack() as stack:
        conns = []
        for schema, *_ in plans:
            ws = stack.enter_context(connect(running_bridge))
            ws.recv(timeout=20)
            ws.send(json.dumps({"messageId": "__schema__", "command": "set_api_schema",
                                "schemaVersion": schema}))
            conns.append(ws)
        sent: dict[int, set[str]] = {i: set() for i in range(len(plans))}
        gone: set[int] = set()
        for step in range(max(len(messages) for _, messages, _, _ in plans)):
            for i, (_, messages, leaves_after, abruptly) in enumerate(plans):
                if i in gone or step >= len(messages):
                    continue
                if step == leaves_after:
                    gone.add(i)
                    if abruptly:
                        conns[i].socket.shutdown(socket.SHUT_RDWR)
                    conns[i].close()
                    continue
                message_id = f"{i}-{step}"
                conns[i].send(json.dumps({**messages[step], "messageId": message_id}))
                sent[i].add(message_id)

        for i, ws in enumerate(conns):
            if i in gone:
                continue
            answers = read_answers(ws, sent[i] | {"__schema__"})
            for message_id in sent[i]:
                assert len(answers[message_id]) == 1, answers[message_id]
                (answer,) = answers[message_id]
                if answer["success"]:
                    assert isinstance(answer["result"], dict)
                else:
                    assert answer["errorCode"] in CATALOG.error_codes
                event(answer.get("errorCode", "success"))
            assert answers.keys() <= sent[i] | {"__schema__"}, answers.keys() - sent[i]
            ws.close()

    with connect(running_bridge) as ws:  # the bridge serves, and the driver is connected
        ws.recv(timeout=20)
        ws.send(json.dumps({"messageId": "c", "command": "driver.connect"}))
        assert json.loads(ws.recv(timeout=20))["messageId"] == "c"
