"""The wire envelope: hello, results, message ids, bad input (PROTOCOL.md §1)."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.doubles import DOORBELL
from tests.wsclient import exchange


async def test_the_server_says_hello_first(bridge):
    async with websockets.connect(bridge.url) as ws:
        hello = json.loads(await ws.recv())
    assert hello == {
        "type": "version",
        "driverVersion": hello["driverVersion"],
        "serverVersion": hello["serverVersion"],
        "minSchemaVersion": 0,
        "maxSchemaVersion": 21,
    }
    assert list(hello) == ["type", "driverVersion", "serverVersion", "minSchemaVersion",
                           "maxSchemaVersion"]


@pytest.mark.parametrize("message_id", ["abc", 7, 7.5, "", None, {"nested": [1]}, [1, "a"]])
async def test_message_id_is_echoed_with_its_json_type(bridge, message_id):
    frame = json.dumps({"messageId": message_id, "command": "driver.is_connected"})
    (reply,) = await exchange(bridge.url, frame)
    assert json.loads(reply) == {"type": "result", "success": True, "messageId": message_id,
                                 "result": {"connected": True}}


async def test_missing_message_id_is_answered_without_one(bridge):
    (reply,) = await exchange(bridge.url, json.dumps({"command": "driver.is_connected"}))
    assert json.loads(reply) == {"type": "result", "success": True, "result": {"connected": True}}


async def test_results_are_byte_for_byte_the_reference_shape(bridge):
    success, failure = await exchange(
        bridge.url,
        json.dumps({"messageId": "y", "command": "driver.is_connected"}),
        json.dumps({"messageId": "x", "command": "nope"}),
    )
    assert success == (
        '{"type":"result","success":true,"messageId":"y","result":{"connected":true}}'
    )
    assert failure == (
        '{"type":"result","success":false,"messageId":"x","errorCode":"unknown_command"}'
    )


async def test_text_that_is_not_json_closes_only_that_connection(connect):
    victim = await connect()
    bystander = await connect(listen=True)
    await victim.ws.send("this is not json")
    await victim.closed.wait()
    assert victim.ws.close_code == 1003
    assert (await bystander.ok("driver.is_connected")) == {"connected": True}


@pytest.mark.parametrize("payload", ["[1, 2]", "42", '"text"', "null", "true"])
async def test_json_that_is_not_an_object_gets_unknown_command(bridge, payload):
    (reply,) = await exchange(bridge.url, payload)
    assert json.loads(reply) == {"type": "result", "success": False, "errorCode": "unknown_command"}


@pytest.mark.parametrize("command", [5, "", "nope", "driver.", "device.get_nothing",
                                     ["driver.is_connected"], {"a": 1}, None])
async def test_unknown_or_malformed_command_names_are_unknown_command(connect, command):
    client = await connect()
    assert await client.error(command) == "unknown_command"


async def test_a_message_without_a_command_is_unknown_command(connect):
    client = await connect()
    reply = await client.send({})
    assert reply["errorCode"] == "unknown_command"


async def test_unknown_serials_answer_at_once(connect):
    client = await connect()
    assert await client.error("device.get_properties", serialNumber="NOPE") == "device_not_found"
    assert await client.error("station.reboot", serialNumber="NOPE") == "station_not_found"
    assert await client.error("device.get_properties", serialNumber=DOORBELL + "x") == \
        "device_not_found"


async def test_binary_frames_holding_json_are_understood(bridge):
    (reply,) = await exchange(bridge.url, b'{"messageId":"b","command":"driver.is_connected"}')
    assert json.loads(reply)["success"] is True
