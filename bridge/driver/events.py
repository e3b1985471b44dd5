"""The driver's one event bus: a backend publishes once, every subscriber hears it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(component="bridge.driver")


@dataclass(frozen=True, slots=True)
class DriverEvent:
    """An event in its fullest form; the server shapes it for each connection's schema.

    ``data`` holds every field any schema may receive (the catalog says which schema gets
    which); station and device references hold the entity itself so that a schema below 13
    can receive the full object even after the entity was removed.
    """

    source: str
    event: str
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[DriverEvent], None]


class EventBus:
    """Synchronous fan-out: subscribers must not block (the server only enqueues)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, event: DriverEvent) -> None:
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                # One broken subscriber must not starve the others of the event.
                log.exception("event subscriber failed", event=event.event, source=event.source)
