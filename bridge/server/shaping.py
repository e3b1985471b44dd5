"""Shaping the driver's state and events for one connection's schema, driven by the catalog.

Schema differences live in ``schemas/catalog.yaml`` (field ranges, property renames,
properties that only exist from a schema on); this module only applies them.
"""

from __future__ import annotations

from typing import Any

import schemas
from bridge.driver import Device, Driver, DriverEvent, Station
from bridge.logs import LogRecord, structured_record, tslog_record

CATALOG = schemas.load()
FULL_OBJECTS_UNTIL = 12
"""Below schema 13, stations and devices travel as full objects; from 13 as serial numbers."""

_RENAME_OUT = {new: (old, since) for old, new, since in CATALOG.property_renames}
_RENAME_IN = {old: (new, since) for old, new, since in CATALOG.property_renames}


def property_name_out(name: str, schema: int) -> str:
    """The name a connection of ``schema`` knows a property by."""
    renamed = _RENAME_OUT.get(name)
    return renamed[0] if renamed and schema < renamed[1] else name


def property_name_in(name: str, schema: int) -> str:
    """The driver's name for a property a connection of ``schema`` names."""
    renamed = _RENAME_IN.get(name)
    return renamed[0] if renamed and schema < renamed[1] else name


def property_visible(name: str, schema: int) -> bool:
    return CATALOG.property_since.get(name, 0) <= schema


def property_values(entity: Station | Device, schema: int) -> dict[str, Any]:
    return {
        property_name_out(k, schema): v
        for k, v in entity.properties.items()
        if property_visible(k, schema)
    }


def property_metadata(entity: Station | Device, schema: int) -> dict[str, Any]:
    out = {}
    for name, meta in entity.metadata.items():
        if property_visible(name, schema):
            shown = property_name_out(name, schema)
            out[shown] = meta.to_json(shown)
    return out


def dump_station(station: Station, schema: int) -> dict[str, Any]:
    """A full station object (schemas below 13)."""
    out = property_values(station, schema)
    if schema < 1:
        out.pop("type", None)
    out["connected"] = station.connected
    return out


def dump_device(device: Device, schema: int) -> dict[str, Any]:
    """A full device object (schemas below 13)."""
    out = property_values(device, schema)
    if schema < 1:
        out.pop("type", None)
    return out


def dump_state(driver: Driver, schema: int, driver_version: str) -> dict[str, Any]:
    """The ``state`` of a ``start_listening`` result."""
    state_driver: dict[str, Any] = {
        "version": driver_version,
        "connected": driver.connected,
        "pushConnected": driver.push_connected,
    }
    if schema >= 9:
        state_driver["mqttConnected"] = False
    if schema <= FULL_OBJECTS_UNTIL:
        stations: list[Any] = [dump_station(s, schema) for s in driver.stations.values()]
        devices: list[Any] = [dump_device(d, schema) for d in driver.devices.values()]
    else:
        stations = list(driver.stations)
        devices = list(driver.devices)
    return {"driver": state_driver, "stations": stations, "devices": devices}


def shape_event(event: DriverEvent, schema: int, driver_version: str) -> dict[str, Any] | None:
    """The event message a connection of ``schema`` receives, or None if it receives none."""
    spec = CATALOG.events.get((event.source, event.event))
    if spec is None or not spec.available_at(schema):
        return None
    if event.event == "property changed" and not property_visible(event.data["name"], schema):
        return None
    body: dict[str, Any] = {"source": event.source, "event": event.event}
    for field in spec.fields:
        if field.name not in event.data or not field.present_at(schema):
            continue
        value = event.data[field.name]
        if field.kind == "station_ref":
            value = dump_station(value, schema) if schema <= FULL_OBJECTS_UNTIL else value.serial
        elif field.kind == "device_ref":
            value = dump_device(value, schema) if schema <= FULL_OBJECTS_UNTIL else value.serial
        elif field.kind == "property_name":
            value = property_name_out(value, schema)
        elif field.kind == "log_record":
            value = _log_message(value, schema, field.shapes, driver_version)
        body[field.name] = value
    return {"type": "event", "event": body}


def _log_message(
    record: LogRecord, schema: int, shapes: dict[str, tuple[int, int | None]], version: str
) -> dict[str, Any]:
    low, high = shapes["tslog"]
    if low <= schema and (high is None or schema <= high):
        return tslog_record(record)
    return structured_record(record, version)
