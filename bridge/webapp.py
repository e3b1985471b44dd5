"""Serving an aiohttp application (the simulators, the SkyBell webhook receiver)."""

from __future__ import annotations

from aiohttp import web


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` and return its runner and the bound port (``port`` 0
    picks a free one).  Open streams get one second to end when the runner is cleaned up."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])
