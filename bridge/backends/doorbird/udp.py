"""UDP event ports shared by every DoorBird backend of the process.

All stations of a site broadcast to the same ports (6524 and 35344), so one socket per port
serves every configured station: each packet is offered to every subscriber, and only the one
whose key opens it takes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

log = structlog.get_logger(component="backend.doorbird")

Subscriber = Callable[[bytes, tuple[str, int]], None]


class _Port(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for subscriber in tuple(self.subscribers):
            try:
                subscriber(data, addr)
            except Exception:
                log.exception("event packet handler failed")

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error", error=str(exc))


_ports: dict[tuple[str, int], _Port] = {}


async def subscribe(host: str, port: int, subscriber: Subscriber) -> Callable[[], None]:
    """Receive every datagram to ``host:port``; raises OSError when the port cannot be had."""
    key = (host, port)
    if key not in _ports:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Port, local_addr=(host, port), allow_broadcast=True)
        protocol.transport = transport
        _ports[key] = protocol
    entry = _ports[key]
    entry.subscribers.append(subscriber)

    def unsubscribe() -> None:
        if subscriber in entry.subscribers:
            entry.subscribers.remove(subscriber)
        if not entry.subscribers and _ports.get(key) is entry:
            del _ports[key]
            if entry.transport is not None:
                entry.transport.close()

    return unsubscribe
