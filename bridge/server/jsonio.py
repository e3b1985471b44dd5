"""JSON in and out of the WebSocket, with Node's Buffer convention for binary data.

eufy-security-ws clients expect binary values as ``{"type":"Buffer","data":[...]}``, the way
Node's ``JSON.stringify`` renders a Buffer; ``bytes`` anywhere in an outgoing message are
rendered that way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from bridge.media.buffers import buffer_fragment

loads = orjson.loads


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return buffer_fragment(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


dumps: Callable[[Any], bytes] = partial(orjson.dumps, default=_default)
"""Serialise one outgoing message (UTF-8 JSON, ready for a text frame)."""


def buffer_bytes(value: Any) -> bytes | None:
    """Decode a Buffer sent by a client: ``{"type":"Buffer","data":[..]}`` or a byte list."""
    if isinstance(value, dict) and value.get("type") == "Buffer":
        value = value.get("data")
    if not isinstance(value, list):
        return None
    try:
        return bytes(value)
    except (TypeError, ValueError):
        return None
