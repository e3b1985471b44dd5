"""The checks, each recorded as one row of the report."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

import schemas
from conformance.session import Session

CATALOG = schemas.load()
NO_SUCH_SERIAL = "CONFORMANCE-NO-SUCH-SERIAL"
STATE_SCHEMAS = (0, 1, 4, 9, 13, 21)

# Values of the right type for each catalog parameter type.
PLAUSIBLE = {
    "string": "x",
    "number": 1,
    "integer": 1,
    "boolean": True,
    "buffer": {"type": "Buffer", "data": [0]},
    "date": "20260101",
    "object": {},
    "array": [],
    "any": 1,
}


@dataclass
class Check:
    name: str
    schema: int | None
    status: str  # pass, fail or skip
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plausible_params(spec: schemas.CommandSpec, serial: str = NO_SUCH_SERIAL) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for param in spec.params:
        if param.name == "serialNumber":
            params[param.name] = serial
        elif param.enum:
            params[param.name] = param.enum[0]
        else:
            params[param.name] = PLAUSIBLE[param.type]
    return params


class Suite:
    """Runs every check against one server URL."""

    def __init__(self, url: str, *, writes: bool = False) -> None:
        self.url = url
        self.writes = writes
        self.results: list[Check] = []
        self._sessions: dict[int, Session] = {}

    def record(self, name: str, schema: int | None, ok: bool, detail: str = "") -> bool:
        self.results.append(Check(name, schema, "pass" if ok else "fail", "" if ok else detail))
        return ok

    def skip(self, name: str, schema: int | None, why: str) -> None:
        self.results.append(Check(name, schema, "skip", why))

    async def session(self, schema: int) -> Session:
        if schema not in self._sessions:
            self._sessions[schema] = await Session.open(self.url, schema)
        return self._sessions[schema]

    async def run(self) -> list[Check]:
        try:
            await self.check_hello()
            await self.check_negotiation()
            await self.check_envelope()
            await self.check_gating()
            await self.check_states()
            await self.check_entity_results()
            await self.check_events()
        finally:
            for session in self._sessions.values():
                await session.close()
        return self.results

    # ------------------------------------------------------------------ hello
    async def check_hello(self) -> None:
        session = await Session.open(self.url)
        hello = session.hello
        self.record("hello: version message first", None,
                    isinstance(hello, dict) and hello.get("type") == "version", str(hello))
        self.record(
            "hello: fields and types", None,
            isinstance(hello.get("driverVersion"), str)
            and isinstance(hello.get("serverVersion"), str)
            and hello.get("minSchemaVersion") == CATALOG.min_schema
            and isinstance(hello.get("maxSchemaVersion"), int)
            and hello["maxSchemaVersion"] >= CATALOG.max_schema,
            json.dumps(hello),
        )
        await session.close()

    # ------------------------------------------------------------------ negotiation
    async def check_negotiation(self) -> None:
        session = await Session.open(self.url)
        for schema in range(CATALOG.min_schema, CATALOG.max_schema + 1):
            reply = await session.command("set_api_schema", schemaVersion=schema)
            self.record("set_api_schema accepts", schema,
                        reply.get("success") is True and reply.get("result") == {}, str(reply))
        await session.command("set_api_schema", schemaVersion=9)
        for bad in (CATALOG.min_schema - 1, CATALOG.max_schema + 1, "21", None):
            reply = await session.command("set_api_schema", schemaVersion=bad)
            self.record(f"set_api_schema rejects {bad!r}", None,
                        reply.get("errorCode") == "schema_incompatible", str(reply))
        # schema 9 must still be in force: get_log_level (9+) works, is_listening_logs (21+) not
        kept = await session.command("driver.get_log_level")
        newer = await session.command("driver.is_listening_logs")
        self.record("a rejected schema keeps the previous one", 9,
                    kept.get("success") is True and newer.get("errorCode") == "unknown_command",
                    f"{kept} / {newer}")
        await session.close()

    # ------------------------------------------------------------------ envelope
    async def check_envelope(self) -> None:
        session = await Session.open(self.url)
        for message_id in ("text-id", 42):
            frame = json.dumps({"messageId": message_id, "command": "driver.is_connected"})
            reply = await session.raw(frame)
            self.record(f"messageId {type(message_id).__name__} echoed", 0,
                        reply.get("messageId") == message_id
                        and type(reply.get("messageId")) is type(message_id), str(reply))
        reply = await session.raw(json.dumps({"command": "driver.is_connected"}))
        self.record("missing messageId stays missing", 0, "messageId" not in reply, str(reply))
        for name in ("no.such_command", "", 5):
            reply = await session.command(name)
            self.record(f"unknown command {name!r}", 0,
                        reply.get("errorCode") == "unknown_command", str(reply))
        reply = await session.command("device.get_properties")
        self.record("missing serialNumber", 0,
                    reply.get("errorCode") == "device_invalid_command_value", str(reply))
        for command, code in (("device.get_properties", "device_not_found"),
                              ("station.get_properties", "station_not_found")):
            reply = await session.command(command, serialNumber=NO_SUCH_SERIAL)
            self.record(f"{command} unknown serial", 0, reply.get("errorCode") == code,
                        str(reply))
        victim = await Session.open(self.url)
        await victim.ws.send("this is not JSON")
        try:
            await asyncio.wait_for(victim.closed.wait(), 5)
            closed = True
        except TimeoutError:
            closed = False
        self.record("text that is not JSON closes the connection", None, closed)
        reply = await session.command("driver.is_connected")
        self.record("other connections keep working", None, reply.get("success") is True,
                    str(reply))
        await session.close()

    # ------------------------------------------------------------------ gating
    async def check_gating(self) -> None:
        for spec in CATALOG.commands.values():
            if spec.target == "server":
                continue
            below = spec.min_schema - 1
            above = None if spec.max_schema is None else spec.max_schema + 1
            for schema in (below, above):
                if schema is None or not CATALOG.min_schema <= schema <= CATALOG.max_schema:
                    continue
                session = await self.session(schema)
                reply = await session.command(spec.name, **plausible_params(spec))
                self.record(f"{spec.name} gated", schema,
                            reply.get("errorCode") == "unknown_command", str(reply))
            edges = {spec.min_schema, spec.max_schema or CATALOG.max_schema}
            for schema in sorted(edges):
                await self.check_in_range(spec, schema)

    async def check_in_range(self, spec: schemas.CommandSpec, schema: int) -> None:
        session = await self.session(schema)
        name = spec.name
        if spec.target in ("station", "device"):
            reply = await session.command(name, **plausible_params(spec))
            expected = f"{spec.target}_not_found"
            self.record(f"{name} available", schema, reply.get("errorCode") == expected,
                        f"expected {expected}: {reply}")
            return
        params = plausible_params(spec)
        if name == "driver.set_log_level":
            current = await session.command("driver.get_log_level")
            params = {"level": current.get("result", {}).get("level", "info")}
        reply = await session.command(name, **params)
        if not self.record(f"{name} available", schema, reply.get("success") is True,
                           str(reply)):
            return
        if name == "driver.disconnect":
            await session.command("driver.connect")
        expected = {f.name for f in spec.result_fields_at(schema)}
        result = reply.get("result")
        self.record(f"{name} result shape", schema,
                    isinstance(result, dict) and set(result) == expected,
                    f"expected keys {sorted(expected)}: {result}")
        self.check_field_types(name, schema, spec, result)

    def check_field_types(self, name: str, schema: int, spec: schemas.CommandSpec,
                          result: Any) -> None:
        if not isinstance(result, dict):
            return
        python = {"boolean": bool, "string": str, "object": dict, "array": list}
        wrong = [
            f.name for f in spec.result_fields_at(schema)
            if f.name in result and f.type in python and not isinstance(result[f.name],
                                                                        python[f.type])
        ]
        if wrong:
            self.record(f"{name} result types", schema, False, f"wrong type: {wrong}")

    # ------------------------------------------------------------------ state
    async def check_states(self) -> None:
        for schema in STATE_SCHEMAS:
            session = await Session.open(self.url, schema)
            reply = await session.command("start_listening")
            await session.close()
            state = (reply.get("result") or {}).get("state")
            if not self.record("start_listening answers a state", schema,
                               isinstance(state, dict), str(reply)):
                continue
            driver_keys = {"version", "connected", "pushConnected"} | (
                {"mqttConnected"} if schema >= 9 else set())
            self.record("state.driver keys", schema,
                        set(state.get("driver", {})) == driver_keys, str(state.get("driver")))
            for kind in ("stations", "devices"):
                items = state.get(kind)
                if not isinstance(items, list):
                    self.record(f"state.{kind} is a list", schema, False, str(items))
                    continue
                if schema >= 13:
                    ok = all(isinstance(i, str) for i in items)
                    self.record(f"state.{kind} are serial numbers", schema, ok, str(items)[:200])
                else:
                    ok = all(isinstance(i, dict) and "serialNumber" in i
                             and ("type" in i) == (schema >= 1) for i in items)
                    self.record(f"state.{kind} are full objects", schema, ok, str(items)[:200])

    # ------------------------------------------------------------------ entity results
    async def check_entity_results(self) -> None:
        session = await self.session(CATALOG.max_schema)
        state = (await session.command("start_listening")).get("result", {}).get("state", {})
        targets = {"station": state.get("stations") or [], "device": state.get("devices") or []}
        if not targets["station"] and not targets["device"]:
            self.skip("station and device result shapes", None, "the server has no devices")
            return
        for spec in CATALOG.commands.values():
            if spec.kind != "query" or spec.target not in targets or not targets[spec.target]:
                continue
            serial = targets[spec.target][0]
            params = plausible_params(spec, serial)
            params.pop("serialNumber")
            if "propertyName" in params:
                params["propertyName"] = "name"
            ranges = {spec.min_schema, 3, 4, 13, spec.max_schema or CATALOG.max_schema}
            for schema in sorted(s for s in ranges if spec.available_at(s)):
                reply = await (await self.session(schema)).command(
                    spec.name, serialNumber=serial, **params)
                if not self.record(f"{spec.name} succeeds for {serial}", schema,
                                   reply.get("success") is True, str(reply)):
                    continue
                expected = {f.name for f in spec.result_fields_at(schema)}
                result = reply.get("result")
                self.record(f"{spec.name} result shape", schema,
                            isinstance(result, dict) and set(result) == expected,
                            f"expected keys {sorted(expected)}: {str(result)[:200]}")
                self.check_field_types(spec.name, schema, spec, result)
        if targets["device"]:
            await self.check_metadata(targets["device"][0])
            await self.check_media_commands(targets["device"])

    async def check_media_commands(self, serials: list[str]) -> None:
        """Live stream and talkback refusals on every device; with ``--writes`` also a real
        start, a second start and a stop."""
        session = await self.session(CATALOG.max_schema)
        for serial in serials:
            reply = await session.command("device.get_commands", serialNumber=serial)
            commands = set((reply.get("result") or {}).get("commands") or [])
            if "start_livestream" not in commands:
                reply = await session.command("device.start_livestream", serialNumber=serial)
                self.record("start_livestream where none is listed", CATALOG.max_schema,
                            reply.get("errorCode") == "device_not_supported", str(reply))
                continue
            refusals: list[tuple[str, str, dict[str, Any]]] = [
                ("device.stop_livestream", "device_livestream_not_running", {})]
            if "start_talkback" in commands:
                refusals += [
                    ("device.stop_talkback", "device_talkback_not_running", {}),
                    ("device.talkback_audio_data", "device_talkback_not_running",
                     {"buffer": PLAUSIBLE["buffer"]})]
            for command, code, params in refusals:
                reply = await session.command(command, serialNumber=serial, **params)
                self.record(f"{command} without a start", CATALOG.max_schema,
                            reply.get("errorCode") == code, str(reply)[:200])
            if self.writes:
                await self.check_livestream(session, serial)

    async def check_livestream(self, session: Session, serial: str) -> None:
        reply = await session.command("device.start_livestream", serialNumber=serial,
                                      timeout=30)
        if not self.record("start_livestream", CATALOG.max_schema,
                           reply.get("success") is True, str(reply)):
            return
        self.record("livestream video data arrives", CATALOG.max_schema,
                    await session.event("livestream video data", timeout=20) is not None)
        reply = await session.command("device.start_livestream", serialNumber=serial)
        self.record("a second start_livestream", CATALOG.max_schema,
                    reply.get("errorCode") == "device_livestream_already_running", str(reply))
        reply = await session.command("device.stop_livestream", serialNumber=serial)
        self.record("stop_livestream", CATALOG.max_schema, reply.get("success") is True,
                    str(reply))

    async def check_metadata(self, serial: str) -> None:
        session = await self.session(CATALOG.max_schema)
        reply = await session.command("device.get_properties_metadata", serialNumber=serial)
        metadata = (reply.get("result") or {}).get("properties") or {}
        required = {"key", "name", "label", "readable", "writeable", "type"}
        bad = [n for n, m in metadata.items()
               if not required <= set(m) or m["type"] not in ("number", "boolean", "string",
                                                              "object")]
        self.record("property metadata fields", CATALOG.max_schema, not bad and bool(metadata),
                    f"incomplete: {bad[:5]}")
        props = await session.command("device.get_properties", serialNumber=serial)
        values = (props.get("result") or {}).get("properties") or {}
        missing = {"name", "model", "serialNumber", "hardwareVersion", "softwareVersion",
                   "type"} - set(values)
        self.record("identity properties present", CATALOG.max_schema, not missing,
                    f"missing {sorted(missing)}")
        reply = await session.command("device.set_property", serialNumber=serial,
                                      name="conformanceNoSuchProperty", value=1)
        self.record("set_property of an unknown property", CATALOG.max_schema,
                    reply.get("errorCode") == "device_invalid_property", str(reply))
        if self.writes:
            await self.check_property_event(serial, metadata, values)

    async def check_property_event(self, serial: str, metadata: dict[str, Any],
                                   values: dict[str, Any]) -> None:
        name = next((n for n, m in metadata.items()
                     if m.get("writeable") and m.get("type") == "boolean"
                     and isinstance(values.get(n), bool)), None)
        if name is None:
            self.skip("property changed shape", None, "no writeable boolean property")
            return
        old = await Session.open(self.url, 9)
        new = await Session.open(self.url, 21)
        for session in (old, new):
            await session.command("start_listening")
        writer = await self.session(CATALOG.max_schema)
        await writer.command("device.set_property", serialNumber=serial, name=name,
                             value=not values[name])
        got_old = await old.event("property changed")
        got_new = await new.event("property changed")
        await writer.command("device.set_property", serialNumber=serial, name=name,
                             value=values[name])
        base = {"source", "event", "serialNumber", "name", "value"}
        self.record("property changed shape", 9,
                    got_old is not None and set(got_old) == base | {"timestamp"}, str(got_old))
        self.record("property changed shape", 21,
                    got_new is not None and set(got_new) == base, str(got_new))
        await old.close()
        await new.close()

    # ------------------------------------------------------------------ events
    async def check_events(self) -> None:
        listeners = {schema: await Session.open(self.url, schema) for schema in (8, 9, 21)}
        for session in listeners.values():
            await session.command("start_listening")
        control = await self.session(CATALOG.max_schema)
        level = (await control.command("driver.get_log_level")).get("result", {}).get("level")
        await control.command("driver.set_log_level", level=level)
        for schema, session in listeners.items():
            event = await session.event("log level changed", timeout=1.0 if schema < 9 else 2.0)
            if schema < 9:
                self.record("log level changed not sent", schema, event is None, str(event))
            else:
                self.record("log level changed shape", schema,
                            event == {"source": "driver", "event": "log level changed",
                                      "level": level}, str(event))
        for schema in (9, 21):
            await listeners[schema].command("driver.start_listening_logs")
        await control.command("driver.set_log_level", level="debug")
        await control.command("device.get_properties", serialNumber=NO_SUCH_SERIAL)
        for schema in (9, 21):
            event = await listeners[schema].event("logging", timeout=2.0)
            if event is None:
                self.skip("logging event shape", schema, "no log record arrived")
                continue
            message = event.get("message")
            if schema < 21:
                ok = isinstance(message, dict) and "logLevel" in message \
                    and "argumentsArray" in message
            else:
                ok = isinstance(message, dict) and "message" in message and isinstance(
                    message.get("meta"), dict) and "logLevel" in message["meta"]
            self.record("logging event shape", schema, ok, str(event)[:300])
            await listeners[schema].command("driver.stop_listening_logs")
        await control.command("driver.set_log_level", level=level)
        for session in listeners.values():
            await session.close()
