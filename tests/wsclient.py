"""A small eufy-security-ws test client: numbered commands, awaited results, queued events."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import websockets

_ids = itertools.count(1)

PATIENCE = 20.0
"""How long a test waits for something that should happen.  Generous on purpose: waits end
as soon as their condition holds, and the machines running the suite may be busy."""


class Client:
    def __init__(self, ws: websockets.ClientConnection, version: dict[str, Any]) -> None:
        self.ws = ws
        self.version = version
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.results: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.unmatched: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, *, schema: int | None = None, listen: bool = False) -> Client:
        ws = await websockets.connect(url, max_size=None)
        version = json.loads(await ws.recv())
        client = cls(ws, version)
        if schema is not None:
            await client.ok("set_api_schema", schemaVersion=schema)
        if listen:
            client.state = (await client.ok("start_listening"))["state"]
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "event":
                    await self.events.put(message["event"])
                    continue
                future = self.results.pop(message.get("messageId"), None)
                if future is None:
                    self.unmatched.append(message)
                else:
                    future.set_result(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send(self, message: dict[str, Any], timeout: float = PATIENCE) -> dict[str, Any]:
        message_id = message.setdefault("messageId", f"m{next(_ids)}")
        future = asyncio.get_running_loop().create_future()
        self.results[message_id] = future
        await self.ws.send(json.dumps(message))
        return await asyncio.wait_for(future, timeout)

    async def command(self, command: str, **params: Any) -> dict[str, Any]:
        return await self.send({"command": command, **params})

    async def ok(self, command: str, **params: Any) -> dict[str, Any]:
        reply = await self.command(command, **params)
        assert reply["success"] is True, reply
        return reply["result"]

    async def error(self, command: str, **params: Any) -> str:
        reply = await self.command(command, **params)
        assert reply["success"] is False, reply
        return reply["errorCode"]

    async def event(self, event: str, timeout: float = PATIENCE, **match: Any) -> dict[str, Any]:
        """The next event of that name (and matching fields); earlier others are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                got = await self.events.get()
                if got["event"] == event and all(got.get(k) == v for k, v in match.items()):
                    return got

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


async def exchange(url: str, *frames: str | bytes) -> list[str]:
    """Send raw frames on a fresh connection, one at a time; return each raw answer."""
    async with websockets.connect(url) as ws:
        await ws.recv()
        answers = []
        for frame in frames:
            await ws.send(frame)
            answers.append(await asyncio.wait_for(ws.recv(), PATIENCE))
        return answers


async def until(condition: Any, timeout: float = PATIENCE) -> None:
    """Wait for ``condition()`` to hold, generously: the machine may be busy."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
