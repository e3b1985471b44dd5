"""The protocol catalog: every eufy-security-ws command and event with its schema range.

This package holds data, not behaviour.  It is shared by the bridge (gating, validation,
shaping), the conformance suite (which must not import the bridge) and the README generator, so
that each fact about the protocol is written down exactly once, in ``catalog.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["Catalog", "CommandSpec", "EventSpec", "FieldSpec", "ParamSpec", "load"]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of a command."""

    name: str
    type: str
    required: bool = True
    enum: tuple[Any, ...] | None = None
    items: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a result or an event, present from ``since`` up to ``until``."""

    name: str
    type: str | None = None
    since: int = 0
    until: int | None = None
    kind: str = "value"
    is_async: bool = False
    shapes: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def present_at(self, schema: int) -> bool:
        return self.since <= schema and (self.until is None or schema <= self.until)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command: its name, schema range, parameters and result fields."""

    name: str
    min_schema: int
    max_schema: int | None
    kind: str
    summary: str
    params: tuple[ParamSpec, ...]
    result: tuple[FieldSpec, ...]
    sets_property: str | None = None

    @property
    def target(self) -> str:
        """``server``, ``driver``, ``station`` or ``device``."""
        return self.name.split(".", 1)[0] if "." in self.name else "server"

    @property
    def short_name(self) -> str:
        """The name without its target prefix, as ``get_commands`` lists it."""
        return self.name.split(".", 1)[1] if "." in self.name else self.name

    def available_at(self, schema: int) -> bool:
        return self.min_schema <= schema and (self.max_schema is None or schema <= self.max_schema)

    def result_fields_at(self, schema: int) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.result if f.present_at(schema))


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event: where it comes from, the schemas that receive it and its fields."""

    source: str
    event: str
    min_schema: int
    max_schema: int | None
    fields: tuple[FieldSpec, ...]

    def available_at(self, schema: int) -> bool:
        return self.min_schema <= schema and (self.max_schema is None or schema <= self.max_schema)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The whole catalog, indexed for lookups."""

    min_schema: int
    max_schema: int
    error_codes: tuple[str, ...]
    log_levels: tuple[str, ...]
    property_renames: tuple[tuple[str, str, int], ...]
    property_since: dict[str, int]
    commands: dict[str, CommandSpec]
    events: dict[tuple[str, str], EventSpec]

    def command(self, name: str) -> CommandSpec | None:
        return self.commands.get(name)

    def event(self, source: str, name: str) -> EventSpec:
        return self.events[(source, name)]


def _range(raw: list[int | None]) -> tuple[int, int | None]:
    low, high = raw
    return int(low or 0), (None if high is None else int(high))


def _field(name: str, raw: dict[str, Any] | None) -> FieldSpec:
    raw = raw or {}
    return FieldSpec(
        name=name,
        type=raw.get("type"),
        since=int(raw.get("since", 0)),
        until=raw.get("until"),
        kind=raw.get("kind", "value"),
        is_async=bool(raw.get("async", False)),
        shapes={k: _range(v) for k, v in (raw.get("shapes") or {}).items()},
    )


def _param(name: str, raw: dict[str, Any]) -> ParamSpec:
    enum = raw.get("enum")
    return ParamSpec(
        name=name,
        type=raw["type"],
        required=bool(raw.get("required", True)),
        enum=tuple(enum) if enum is not None else None,
        items=raw.get("items"),
        min=raw.get("min"),
        max=raw.get("max"),
    )


def parse(document: dict[str, Any]) -> Catalog:
    """Build a :class:`Catalog` from the parsed YAML document."""
    commands: dict[str, CommandSpec] = {}
    for raw in document["commands"]:
        low, high = _range(raw["schema"])
        commands[raw["name"]] = CommandSpec(
            name=raw["name"],
            min_schema=low,
            max_schema=high,
            kind=raw["kind"],
            summary=raw.get("summary", ""),
            params=tuple(_param(n, p) for n, p in (raw.get("params") or {}).items()),
            result=tuple(_field(n, f) for n, f in (raw.get("result") or {}).items()),
            sets_property=raw.get("property"),
        )
    events: dict[tuple[str, str], EventSpec] = {}
    for raw in document["events"]:
        low, high = _range(raw["schema"])
        events[(raw["source"], raw["event"])] = EventSpec(
            source=raw["source"],
            event=raw["event"],
            min_schema=low,
            max_schema=high,
            fields=tuple(_field(n, f) for n, f in (raw.get("fields") or {}).items()),
        )
    versions = document["versions"]
    return Catalog(
        min_schema=int(versions["min_schema"]),
        max_schema=int(versions["max_schema"]),
        error_codes=tuple(document["error_codes"]),
        log_levels=tuple(document["log_levels"]),
        property_renames=tuple(
            (r["old"], r["new"], int(r["since"])) for r in document["property_renames"]
        ),
        property_since={k: int(v) for k, v in (document.get("property_since") or {}).items()},
        commands=commands,
        events=events,
    )


@cache
def load() -> Catalog:
    """The catalog shipped with this package (parsed once per process)."""
    text = resources.files(__name__).joinpath("catalog.yaml").read_text(encoding="utf-8")
    return parse(yaml.safe_load(text))
