"""``station.*`` and ``device.*`` commands.

Queries always succeed for an existing station or device (``false``, ``{}`` or ``[]`` where a
feature is absent), because the largest client aborts its whole set-up when one fails; only
actions may answer ``device_not_supported``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import structlog

from bridge.driver import Device
from bridge.driver.errors import (
    BridgeError,
    InvalidCommandValue,
    LivestreamAlreadyRunning,
    LivestreamNotRunning,
    NotSupported,
)
from bridge.media.audio import split_adts
from bridge.media.relay import RtspRelay
from bridge.server import shaping
from bridge.server.commands import Request, Result, handles
from bridge.server.livestream import Watcher, notice
from bridge.server.session import Session

audit = structlog.get_logger(component="bridge.audit")

AUDITED_COMMANDS = frozenset({"unlock", "open", "lock_device"})
AUDITED_PROPERTIES = frozenset({"locked", "relayPasscode"})
"""What opens a door or changes how it opens: every such request is logged at info with the
client's address, so that who opened the door can be found out afterwards."""

T = TypeVar("T")

TALKBACK_SCHEMA = 13
"""The schema from which talkback events exist."""


async def _audited(req: Request, action: str, work: Awaitable[T], **what: Any) -> T:
    """Log the request before it runs (a hung backend still leaves a trace) and a failure."""
    fields = {"peer": req.session.peer, "action": action, "serialNumber": req.entity.serial, **what}
    audit.info("door action", **fields)
    try:
        return await work
    except BridgeError as error:
        audit.info("door action failed", code=error.code, **fields)
        raise


def _serial(req: Request) -> Result:
    return {"serialNumber": req.entity.serial}


@handles("station.get_properties", "device.get_properties")
def get_properties(req: Request) -> Result:
    return {**_serial(req), "properties": shaping.property_values(req.entity, req.schema)}


@handles("station.get_properties_metadata", "device.get_properties_metadata")
def get_properties_metadata(req: Request) -> Result:
    return {**_serial(req), "properties": shaping.property_metadata(req.entity, req.schema)}


@handles("station.has_property", "device.has_property")
def has_property(req: Request) -> Result:
    name = shaping.property_name_in(req.params["propertyName"], req.schema)
    exists = name in req.entity.properties and shaping.property_visible(name, req.schema)
    return {**_serial(req), "exists": exists}


def _available_commands(req: Request) -> list[str]:
    prefix = req.spec.target
    out = []
    for name in req.entity.commands:
        spec = shaping.CATALOG.command(f"{prefix}.{name}")
        if spec is not None and spec.available_at(req.schema):
            out.append(name)
    return out


@handles("station.get_commands", "device.get_commands")
def get_commands(req: Request) -> Result:
    return {**_serial(req), "commands": _available_commands(req)}


@handles("station.has_command", "device.has_command")
def has_command(req: Request) -> Result:
    return {**_serial(req), "exists": req.params["commandName"] in _available_commands(req)}


@handles("station.set_property", "device.set_property")
async def set_property(req: Request) -> Result:
    name = shaping.property_name_in(req.params["name"], req.schema)
    write = req.driver.write_property(req.entity, name, req.params["value"])
    if name in AUDITED_PROPERTIES:
        # a passcode's value is never logged, only that it was written
        shown = {"value": req.params["value"]} if name == "locked" else {}
        await _audited(req, f"set {name}", write, **shown)
    else:
        await write
    return {}


@handles("station.is_connected")
def station_is_connected(req: Request) -> Result:
    return {**_serial(req), "connected": req.driver.station(req.entity.serial).connected}


@handles("device.is_livestreaming")
def is_livestreaming(req: Request) -> Result:
    return {**_serial(req), "livestreaming": req.driver.streams.is_streaming(req.entity.serial)}


@handles("device.is_rtsp_livestreaming")
def is_rtsp_livestreaming(req: Request) -> Result:
    rtsp = req.driver.rtsp
    return {**_serial(req), "livestreaming": rtsp is not None and rtsp.playing(req.entity.serial)}


def _rtsp(req: Request) -> RtspRelay:
    rtsp = req.driver.rtsp
    if rtsp is None or not isinstance(req.entity, Device):
        raise NotSupported(f"{req.entity.serial} is not served over RTSP")
    rtsp.check(req.entity)
    return rtsp


@handles("device.start_rtsp_livestream")
def start_rtsp_livestream(req: Request) -> Result:
    """The bridge serves the camera over RTSP at any time, its device streaming while a player
    plays: starting says so to every listening client (``got rtsp url``, then ``rtsp
    livestream started``, which the Home Assistant integration waits for before it plays)."""
    rtsp, serial = _rtsp(req), req.entity.serial
    rtsp.requested.add(serial)
    _publish_soon(req, "got rtsp url", rtspUrl=req.entity.properties["rtspStreamUrl"])
    _publish_soon(req, "rtsp livestream started")
    return {}


@handles("device.stop_rtsp_livestream")
def stop_rtsp_livestream(req: Request) -> Result:
    """Players already playing go on until they leave (each holds its own share of the
    stream); clients are told that the RTSP live stream stopped."""
    rtsp, serial = _rtsp(req), req.entity.serial
    rtsp.requested.discard(serial)
    _publish_soon(req, "rtsp livestream stopped")
    return {}


def _publish_soon(req: Request, event: str, **data: Any) -> None:
    """A device event for every listening client, after the command's answer."""
    asyncio.get_running_loop().call_soon(lambda: req.driver.publish(
        "device", event, serialNumber=req.entity.serial, **data))


@handles("device.start_livestream")
async def start_livestream(req: Request) -> Result:
    """Start the device's stream, or join it when another connection already watches; the
    answer comes once media flows, ``livestream started`` right after it."""
    assert isinstance(req.entity, Device)
    serial, watching = req.entity.serial, req.session.livestreams
    if serial in watching:
        raise LivestreamAlreadyRunning(f"this connection already watches {serial}")
    watcher = watching[serial] = Watcher(req.session, serial)
    try:
        await req.driver.watch(req.entity, watcher)
    except BaseException:
        if watching.get(serial) is watcher:
            del watching[serial]
        raise
    watcher.start()
    return {}


@handles("device.stop_livestream")
def stop_livestream(req: Request) -> Result:
    """Stop watching; the stream itself stops when nobody else watches."""
    serial = req.entity.serial
    watcher = req.session.livestreams.pop(serial, None)
    if watcher is None:
        raise LivestreamNotRunning(f"this connection does not watch {serial}")
    req.driver.streams.leave(serial, watcher)
    asyncio.get_running_loop().call_soon(watcher.announce, "livestream stopped")
    return {}


@handles("device.is_downloading")
def is_downloading(req: Request) -> Result:
    return {**_serial(req), "downloading": req.driver.downloads.downloading(req.entity.serial)}


@handles("device.start_download")
async def start_download(req: Request) -> Result:
    """Download one recording (one at a time per device); the answer comes once the clip is
    found, then ``download started``, the media, and ``download finished``."""
    assert isinstance(req.entity, Device)
    download = await req.driver.start_download(req.entity, req.session, req.params["path"],
                                               req.params["cipherId"])
    asyncio.get_running_loop().call_soon(download.begin)
    return {}


@handles("device.cancel_download")
def cancel_download(req: Request) -> Result:
    """End this connection's download: its media stops at once and, as from the reference
    server, ``download finished`` follows the answer."""
    download = req.driver.downloads.cancel(req.entity.serial, req.session)
    asyncio.get_running_loop().call_soon(download.finish)
    return {}


@handles("device.is_talkback_ongoing")
def is_talkback_ongoing(req: Request) -> Result:
    return {**_serial(req), "talkbackOngoing": req.driver.talks.ongoing(req.entity.serial)}


@handles("device.start_talkback")
async def start_talkback(req: Request) -> Result:
    """Talk through the device (one client at a time); ``talkback started`` follows the
    answer, ``talkback stopped`` comes when the talk ends by itself (idle, device gone)."""
    assert isinstance(req.entity, Device)
    session, serial = req.session, req.entity.serial

    def ended(reason: str | None) -> None:
        _announce(session, serial, "talkback stopped")

    await req.driver.start_talk(req.entity, session, ended)
    asyncio.get_running_loop().call_soon(_announce, session, serial, "talkback started")
    return {}


@handles("device.talkback_audio_data")
def talkback_audio_data(req: Request) -> Result:
    talk = req.driver.talks.talk_of(req.entity.serial, req.session)
    try:
        frames = split_adts(req.params["buffer"])
    except ValueError as exc:
        raise InvalidCommandValue(f"talkback audio: {exc}") from None
    for frame in frames:
        talk.put(frame)
    return {}


@handles("device.stop_talkback")
def stop_talkback(req: Request) -> Result:
    req.driver.talks.stop(req.entity.serial, req.session)
    asyncio.get_running_loop().call_soon(_announce, req.session, req.entity.serial,
                                         "talkback stopped")
    return {}


def _announce(session: Session, serial: str, name: str) -> None:
    if session.schema >= TALKBACK_SCHEMA:
        session.send(notice(serial, name))


@handles("device.get_voices")
async def get_voices(req: Request) -> Result:
    assert isinstance(req.entity, Device)
    return {**_serial(req), "voices": await req.driver.get_voices(req.entity)}


@handles("device.get_users")
async def get_users(req: Request) -> Result:
    if "get_users" not in req.entity.commands:
        return {"users": []}
    users = await req.driver.run_command(req.entity, "get_users", req.params)
    return {"users": users or []}


async def generic_action(req: Request) -> Result:
    """Every other station or device action: deprecated setters write their property, the
    rest go to the backend, which answers ``device_not_supported`` for what it cannot do."""
    if req.spec.sets_property is not None:
        if req.spec.sets_property not in req.entity.metadata:
            raise NotSupported(f"{req.entity.serial} has no {req.spec.sets_property}")
        value = req.params["mode" if "mode" in req.params else "value"]
        write = req.driver.write_property(req.entity, req.spec.sets_property, value)
        if req.spec.sets_property in AUDITED_PROPERTIES:
            shown = {"value": value} if req.spec.sets_property == "locked" else {}
            await _audited(req, req.spec.short_name, write, **shown)
        else:
            await write
        return {}
    params = {k: v for k, v in req.params.items() if k != "serialNumber"}
    run = req.driver.run_command(req.entity, req.spec.short_name, params)
    if req.spec.short_name in AUDITED_COMMANDS:
        result = await _audited(req, req.spec.short_name, run)
    else:
        result = await run
    return result if isinstance(result, dict) else {}
