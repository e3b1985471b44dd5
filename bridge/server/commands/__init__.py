"""Command handlers, one module per target, registered by catalog name.

A handler takes a :class:`Request` and returns the result fields (a dict) or an awaitable of
them.  Queries answer synchronously from the driver's model; actions await a backend.  The
server trims each result to the fields the catalog lists for the connection's schema (so a
handler returns ``serialNumber`` and the catalog decides whether schema 3 sees it), and fills
``async: true`` where the catalog says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas import CommandSpec

if TYPE_CHECKING:
    from bridge.driver import Device, Driver, Station
    from bridge.server.session import Session

Result = dict[str, Any]
Handler = Callable[["Request"], Result | Awaitable[Result]]

HANDLERS: dict[str, Handler] = {}


@dataclass(slots=True)
class Request:
    """One validated command, with the station or device it names already looked up, and the
    session of the connection that sent it."""

    session: Session
    spec: CommandSpec
    params: dict[str, Any]
    target: Station | Device | None

    @property
    def driver(self) -> Driver:
        return self.session.driver

    @property
    def schema(self) -> int:
        return self.session.schema

    @property
    def entity(self) -> Station | Device:
        assert self.target is not None
        return self.target


def handles(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more catalog command names."""

    def register(handler: Handler) -> Handler:
        for name in names:
            if name in HANDLERS:
                raise RuntimeError(f"two handlers for {name}")
            HANDLERS[name] = handler
        return handler

    return register


def handler_for(spec: CommandSpec) -> Handler:
    """The handler of a command: its own, or the generic one for actions."""
    handler = HANDLERS.get(spec.name)
    if handler is not None:
        return handler
    if spec.kind == "action" and spec.target in ("station", "device"):
        return entity_commands.generic_action
    raise LookupError(f"no handler for {spec.name}")


# Importing the handler modules registers their handlers.
from bridge.server.commands import driver_commands, entity_commands  # noqa: E402, F401
