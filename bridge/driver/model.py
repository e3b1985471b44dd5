"""Stations and devices as eufy clients see them: property values, metadata and commands."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from bridge.driver.errors import InvalidPropertyValue

if TYPE_CHECKING:
    from bridge.driver.backend import Backend

PropertyType = Literal["number", "boolean", "string", "object"]

LIVE_COMMANDS = ("start_livestream", "stop_livestream", "is_livestreaming", "start_talkback",
                 "stop_talkback", "talkback_audio_data", "is_talkback_ongoing")
"""What a doorbell with live view and talkback lists (its backend's ``stream`` and ``talk``
carry them out)."""
DOWNLOAD_COMMANDS = ("start_download", "cancel_download", "is_downloading")
"""What a device whose recordings can be downloaded lists (its backend's ``download``)."""


@dataclass(frozen=True, slots=True)
class PropertyMetadata:
    """What a client needs to build an entity for a property (PROTOCOL.md §1)."""

    name: str
    label: str
    type: PropertyType
    key: str | int = ""
    readable: bool = True
    writeable: bool = False
    min: float | None = None
    max: float | None = None
    default: Any = None
    states: dict[int, str] | None = None
    unit: str | None = None
    steps: float | None = None

    def to_json(self, name: str | None = None) -> dict[str, Any]:
        """The metadata object of ``get_properties_metadata`` (optional keys only when set)."""
        out: dict[str, Any] = {
            "key": self.key or self.name,
            "name": name or self.name,
            "label": self.label,
            "readable": self.readable,
            "writeable": self.writeable,
            "type": self.type,
        }
        for attr in ("min", "max", "default", "unit", "steps"):
            value = getattr(self, attr)
            if value is not None:
                out[attr] = value
        if self.states is not None:
            out["states"] = {str(k): v for k, v in self.states.items()}
        return out

    def with_(self, **changes: Any) -> PropertyMetadata:
        """A copy with some fields changed, for backends that refine a standard property."""
        return replace(self, **changes)

    def check(self, value: Any) -> Any:
        """Return ``value`` if it fits this property, else raise InvalidPropertyValue."""
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise InvalidPropertyValue(f"{self.name} takes true or false, not {value!r}")
            return value
        if self.type == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidPropertyValue(f"{self.name} takes a number, not {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidPropertyValue(f"{self.name} takes a finite number")
            if self.states is not None:
                if value not in self.states:
                    allowed = ", ".join(f"{k} ({v})" for k, v in self.states.items())
                    raise InvalidPropertyValue(f"{self.name} takes one of {allowed}")
                return int(value)
            if self.min is not None and value < self.min:
                raise InvalidPropertyValue(f"{self.name} must be at least {self.min}")
            if self.max is not None and value > self.max:
                raise InvalidPropertyValue(f"{self.name} must be at most {self.max}")
            return value
        if self.type == "string":
            if not isinstance(value, str):
                raise InvalidPropertyValue(f"{self.name} takes a string, not {value!r}")
            if self.min is not None and len(value) < self.min:
                raise InvalidPropertyValue(f"{self.name} needs at least {self.min:g} characters")
            if self.max is not None and len(value) > self.max:
                raise InvalidPropertyValue(f"{self.name} takes at most {self.max:g} characters")
            return value
        if not isinstance(value, dict):
            raise InvalidPropertyValue(f"{self.name} takes an object")
        return value


@dataclass(eq=False, slots=True)
class Entity:
    """What stations and devices share: a serial, properties with metadata, commands."""

    serial: str
    backend: Backend | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, PropertyMetadata] = field(default_factory=dict)
    commands: tuple[str, ...] = ()
    """Command names without the ``station.`` / ``device.`` prefix, as get_commands lists them."""

    kind: str = "entity"

    @property
    def name(self) -> str:
        return str(self.properties.get("name", self.serial))

    @property
    def type(self) -> int:
        return int(self.properties.get("type", 0))

    def define(self, meta: PropertyMetadata, value: Any) -> None:
        """Declare a property with its metadata and first value."""
        self.metadata[meta.name] = meta
        self.properties[meta.name] = value


@dataclass(eq=False, slots=True)
class Station(Entity):
    """A eufy station: the thing a client connects to (a hub, or a standalone doorbell)."""

    connected: bool = True
    kind: str = "station"


@dataclass(eq=False, slots=True)
class Device(Entity):
    """A eufy device: a doorbell camera, a lock (door relay), ..."""

    station_serial: str = ""
    kind: str = "device"
