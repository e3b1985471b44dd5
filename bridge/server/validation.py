"""Checking a command's parameters against its catalog entry before anything runs."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from bridge.driver.errors import InvalidCommandValue
from bridge.server.jsonio import buffer_bytes
from schemas import CommandSpec, ParamSpec


def validate_params(spec: CommandSpec, message: dict[str, Any]) -> dict[str, Any]:
    """Return the command's parameters, converted (buffers to bytes, dates to ``date``).

    Raises InvalidCommandValue naming the first parameter that is missing or does not fit.
    """
    params: dict[str, Any] = {}
    for param in spec.params:
        present = param.name in message and (
            param.type == "any" or message[param.name] is not None
        )
        if not present:
            if param.required:
                raise InvalidCommandValue(f"{spec.name}: {param.name} is required")
            continue
        params[param.name] = _check(spec.name, param, message[param.name])
    return params


def _check(command: str, param: ParamSpec, value: Any) -> Any:
    converted = _convert(param.type, value, param.items)
    if converted is _INVALID:
        raise InvalidCommandValue(f"{command}: {param.name} must be of type {param.type}")
    if param.enum is not None and converted not in param.enum:
        allowed = ", ".join(map(str, param.enum))
        raise InvalidCommandValue(f"{command}: {param.name} must be one of {allowed}")
    if param.min is not None and converted < param.min:
        raise InvalidCommandValue(f"{command}: {param.name} must be at least {param.min}")
    if param.max is not None and converted > param.max:
        raise InvalidCommandValue(f"{command}: {param.name} must be at most {param.max}")
    return converted


_INVALID = object()


def _convert(kind: str, value: Any, items: str | None = None) -> Any:
    if kind == "any":
        return value
    if kind == "string":
        return value if isinstance(value, str) else _INVALID
    if kind == "boolean":
        return value if isinstance(value, bool) else _INVALID
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _INVALID
        if isinstance(value, float):
            if not math.isfinite(value):
                return _INVALID
            if kind == "integer":
                return int(value) if value.is_integer() else _INVALID
        return value
    if kind == "object":
        return value if isinstance(value, dict) else _INVALID
    if kind == "array":
        if not isinstance(value, list):
            return _INVALID
        if items is None:
            return value
        out = [_convert(items, v) for v in value]
        return _INVALID if any(v is _INVALID for v in out) else out
    if kind == "buffer":
        data = buffer_bytes(value)
        return _INVALID if data is None else data
    if kind == "date":
        return _parse_date(value)
    raise ValueError(f"the catalog names an unknown parameter type {kind!r}")


def _parse_date(value: Any) -> Any:
    """Dates as eufy clients send them: ``YYYYMMDD`` (the reference format) or ISO 8601."""
    if not isinstance(value, str):
        return _INVALID
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return _INVALID

