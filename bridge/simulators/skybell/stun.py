"""A STUN Binding responder: the ICE server the simulated cloud hands to viewers.

The real cloud's live-view answer lists Amazon's STUN and TURN servers, and a viewer gathers
candidates through them.  The simulator lists this one instead, so that a viewer does exactly
what it does against the real cloud (ask its STUN server for its reflexive address) without
leaving the machine.  TURN is not simulated: on loopback every pair of candidates connects.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aioice import stun

log = structlog.get_logger(component="simulator.skybell")

MAX_PACKET = 1500


class _Responder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio's classes
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) > MAX_PACKET or self.transport is None:
            return
        try:
            request = stun.parse_message(data)
        except ValueError:
            return  # not STUN: a real server ignores it too
        if request.message_method != stun.Method.BINDING \
                or request.message_class != stun.Class.REQUEST:
            return
        response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE,
                                transaction_id=request.transaction_id)
        response.attributes["XOR-MAPPED-ADDRESS"] = (addr[0], addr[1])
        response.add_fingerprint()
        self.transport.sendto(bytes(response), addr)
        self.answered += 1


class StunServer:
    """Answers STUN Binding requests on one UDP port."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.host, self.port = host, port
        self._transport: Any = None
        self._responder = _Responder()

    @property
    def answered(self) -> int:
        return self._responder.answered

    @property
    def url(self) -> str:
        return f"stun:{self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self._responder, local_addr=(self.host, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
