"""The README's property tables, read off the bridge itself.

Each vendor's table lists what its stations and devices really carry: the demo house (both
simulators, reached through the real backends) is started in-process, and every property's
metadata is read from the driver exactly as ``get_properties_metadata`` would serve it.  A
property added, renamed or re-ranged in a backend therefore changes the README the next time it
is rendered, and a test fails until it is.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from pathlib import Path

from bridge.backends import build_backends
from bridge.demo import Demo
from bridge.driver import Driver
from bridge.driver.model import Entity, PropertyMetadata
from bridge.settings import load_settings

ROLES = {"station": "station", 51: "relay"}
"""How an entity's role is named in the tables: stations, relays (device type 51), and every
other device is a doorbell."""


def _role(entity: Entity) -> str:
    if entity.kind == "station":
        return "station"
    return ROLES.get(entity.type, "doorbell")


async def _house() -> dict[str, list[Entity]]:
    """The demo house's stations and devices, by vendor."""
    demo = Demo(visitors=None)
    await demo.start()
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = demo.settings(load_settings(**{"server.data_dir": Path(data_dir)}))
            driver = Driver(build_backends(settings))
            await driver.start()
            try:
                house: dict[str, list[Entity]] = defaultdict(list)
                for entity in [*driver.stations.values(), *driver.devices.values()]:
                    if entity.backend is not None:
                        house[entity.backend.vendor].append(entity)
                return dict(house)
            finally:
                await driver.stop()
    finally:
        await demo.stop()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _values(meta: PropertyMetadata) -> str:
    if meta.states:
        return ", ".join(f"{k}: {v}" for k, v in sorted(meta.states.items()))
    low, high = meta.min, meta.max
    if low is None and high is None:
        return meta.unit or ""
    if low is not None and high is not None:
        span = _number(low) if low == high else f"{_number(low)} to {_number(high)}"
    else:
        span = f"from {_number(low)}" if low is not None else f"up to {_number(high)}"  # type: ignore[arg-type]
    if meta.type == "string":
        return f"{span} characters"
    return span + (f" {meta.unit}" if meta.unit else "")


def _access(meta: PropertyMetadata) -> str:
    if meta.writeable and not meta.readable:
        return "write-only"
    return "read, write" if meta.writeable else "read"


def table(entities: list[Entity]) -> str:
    """One row per property (metadata as served), naming the roles that carry it and the
    vendor keys behind it."""
    roles: dict[tuple[str, ...], set[str]] = defaultdict(set)
    keys: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for entity in entities:
        for name, meta in entity.metadata.items():
            row = (name, meta.label, meta.type, _values(meta), _access(meta))
            roles[row].add(_role(entity))
            if meta.key and meta.key != name:
                keys[row].add(str(meta.key))
    order = ["station", "doorbell", "relay"]
    lines = ["| Property | On | Type | Values | Access | Vendor key |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in sorted(roles):
        name, label, type_, values, access = row
        on = ", ".join(r for r in order if r in roles[row])
        vendor = ", ".join(f"`{k}`" for k in sorted(keys[row]))
        lines.append(f"| `{name}` ({label}) | {on} | {type_} | {values} | {access} | {vendor} |")
    return "\n".join(lines) + "\n"


def property_tables() -> dict[str, str]:
    """Each vendor's table, rendered from a freshly started demo house."""
    house = asyncio.run(_house())
    return {vendor: table(entities) for vendor, entities in house.items()}
