"""Logging: structlog records on stderr, and the same records forwarded to clients.

``driver.set_log_level`` changes the level of the whole bridge at run time, so filtering is
done by a processor that reads the current level rather than by a logger frozen at start-up.
Records are redacted before they are rendered or forwarded: credentials never leave the
process through a log line or a ``logging`` event.
"""

from __future__ import annotations

import logging
import platform
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

LEVELS = ("silly", "trace", "debug", "info", "warn", "error", "fatal")
"""The seven eufy-security-ws log levels, quietest last."""

_LEVEL_IDS = {name: i for i, name in enumerate(LEVELS)}
_FROM_STRUCTLOG = {
    "debug": "debug",
    "info": "info",
    "warning": "warn",
    "warn": "warn",
    "error": "error",
    "exception": "error",
    "critical": "fatal",
    "fatal": "fatal",
}
_SECRET_WORDS = ("password", "token", "secret", "api_key", "apikey", "authorization", "key")
_INTERNAL_KEYS = {"event", "level", "timestamp", "component", "exc_info", "stack_info"}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record in a form that can be shaped for any client schema."""

    level: str
    message: str
    logger: str
    date: datetime
    fields: dict[str, Any] = field(default_factory=dict)


LogListener = Callable[[LogRecord], None]


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of every key that names a credential."""
    return {
        k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) and v else v)
        for k, v in fields.items()
    }


class LogHub:
    """The bridge's current log level and the clients that listen to its records."""

    def __init__(self, level: str = "info") -> None:
        self.level = level
        self._level_id = _LEVEL_IDS[level]
        self._listeners: list[LogListener] = []
        self._forwarding = False

    def set_level(self, level: str) -> None:
        if level not in _LEVEL_IDS:
            raise ValueError(f"unknown log level {level!r}")
        self.level = level
        self._level_id = _LEVEL_IDS[level]

    def add_listener(self, listener: LogListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def processor(self, _logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """structlog processor: drop what is below the level, forward the rest to listeners."""
        level = _FROM_STRUCTLOG.get(method, "info")
        if _LEVEL_IDS[level] < self._level_id:
            raise structlog.DropEvent
        event_dict = redact(event_dict)
        if self._listeners and not self._forwarding:
            record = LogRecord(
                level=level,
                message=str(event_dict.get("event", "")),
                logger=str(event_dict.get("component", "bridge")),
                date=datetime.now(UTC),
                fields={k: v for k, v in event_dict.items() if k not in _INTERNAL_KEYS},
            )
            # A listener that logs must not feed itself.
            self._forwarding = True
            try:
                for listener in tuple(self._listeners):
                    listener(record)
            finally:
                self._forwarding = False
        return event_dict


hub = LogHub()
"""The process-wide hub (structlog's configuration is process-wide too)."""

HOSTNAME = socket.gethostname()


def tslog_record(record: LogRecord) -> dict[str, Any]:
    """The ``logging`` event message for schemas 9-20: a tslog 3 log object."""
    arguments: list[Any] = [record.message]
    if record.fields:
        arguments.append(_jsonable(record.fields))
    return {
        "instanceName": HOSTNAME,
        "hostname": HOSTNAME,
        "loggerName": record.logger,
        "date": _iso(record.date),
        "logLevel": record.level,
        "logLevelId": _LEVEL_IDS[record.level],
        "argumentsArray": arguments,
        "isConstructor": False,
    }


def structured_record(record: LogRecord, driver_version: str) -> dict[str, Any]:
    """The ``logging`` event message for schemas 21 and up."""
    out: dict[str, Any] = {"message": record.message}
    if record.fields:
        out["arguments"] = [_jsonable(record.fields)]
    out["meta"] = {
        "runtime": "python",
        "runtimeVersion": platform.python_version(),
        "hostname": HOSTNAME,
        "date": _iso(record.date),
        "logLevel": record.level,
        "driverVersion": driver_version,
    }
    return out


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | None) else str(v)
            for k, v in fields.items()}


def configure(level: str = "info", fmt: str = "console") -> None:
    """Set up structlog for the process: level, redaction, forwarding and rendering."""
    hub.set_level(level)
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(
            serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            hub.processor,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _identity(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return event_dict
