"""A headless Chromium driven over the DevTools protocol (no browser driver needed)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import tempfile
from typing import Any

import aiohttp
import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._profile = tempfile.TemporaryDirectory()
        self.process: asyncio.subprocess.Process | None = None
        self.page: websockets.ClientConnection | None = None

    async def __aenter__(self) -> Browser:
        assert CHROMIUM is not None
        self.process = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-default-apps",
            "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.process.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = (await self.process.stderr.readline()).decode()
                if match := re.search(r"DevTools listening on ws://([^/]+)/", line):
                    break
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://{match.group(1)}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self.page = await websockets.connect(page["webSocketDebuggerUrl"], max_size=None)
        return self

    async def __aexit__(self, *_: Any) -> None:
        if self.page is not None:
            await self.page.close()
        if self.process is not None:
            self.process.kill()
            await self.process.wait()
        self._profile.cleanup()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.page is not None
        message_id = next(self._ids)
        await self.page.send(json.dumps({"id": message_id, "method": method,
                                         "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.page.recv(), 30))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        async with asyncio.timeout(timeout):
            while not (value := await self.evaluate(expression)):
                await asyncio.sleep(0.1)
        return value

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.call("Page.captureScreenshot"))["data"])
