"""A minimal eufy-security-ws client for the checks: results by message id, events queued."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import websockets

_ids = itertools.count(1)


class Session:
    """One WebSocket connection to the server under test."""

    def __init__(self, ws: websockets.ClientConnection, hello: Any) -> None:
        self.ws = ws
        self.hello = hello
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, schema: int | None = None) -> Session:
        ws = await websockets.connect(url, max_size=None, open_timeout=10)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        session = cls(ws, hello)
        if schema is not None:
            reply = await session.command("set_api_schema", schemaVersion=schema)
            if not reply.get("success"):
                raise RuntimeError(f"the server refused schema {schema}: {reply}")
        return session

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "event":
                    await self.events.put(message.get("event", {}))
                    continue
                future = self._pending.pop(message.get("messageId"), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (websockets.ConnectionClosed, ValueError):
            pass
        finally:
            self.closed.set()

    async def command(self, command: Any, timeout: float = 10.0, **params: Any) -> dict[str, Any]:
        message_id = f"conformance-{next(_ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.ws.send(json.dumps({"messageId": message_id, "command": command, **params}))
        return await asyncio.wait_for(future, timeout)

    async def raw(self, frame: str, timeout: float = 10.0) -> dict[str, Any]:
        """Send a frame as is and return the next result that carries no known message id."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        key = json.loads(frame).get("messageId") if frame.startswith("{") else None
        self._pending[key] = future  # type: ignore[index]
        await self.ws.send(frame)
        return await asyncio.wait_for(future, timeout)

    async def event(self, name: str, timeout: float = 2.0) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self.events.get()
                    if event.get("event") == name:
                        return event
        except TimeoutError:
            return None

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
