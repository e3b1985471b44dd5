"""The bridge as a whole: settings in, driver and server wired, signals handled."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence

import structlog

from bridge import __version__
from bridge.backends import build_backends
from bridge.driver import Backend, Driver
from bridge.media.relay import RtspRelay
from bridge.server import BridgeServer
from bridge.server.access import Access, tls_context
from bridge.settings import Settings

log = structlog.get_logger(component="bridge")

SHUTDOWN_SECONDS = 5.0


class Bridge:
    """A driver with its backends, served over WebSocket."""

    def __init__(self, settings: Settings, backends: Sequence[Backend] | None = None) -> None:
        self.settings = settings
        self.driver = Driver(
            build_backends(settings) if backends is None else backends,
            event_seconds=settings.server.event_seconds,
            # a slow backend must leave time for the answer within the command timeout
            backend_timeout=settings.server.command_timeout * 0.8,
        )
        server = settings.server
        self.server = BridgeServer(
            self.driver,
            host=server.host,
            port=server.port,
            driver_version=__version__,
            server_version=__version__,
            command_timeout=server.command_timeout,
            ping_interval=server.ping_interval,
            ping_timeout=server.ping_timeout,
            send_buffer_limit=server.send_buffer_limit,
            max_message_size=server.max_message_size,
            max_connections=server.max_connections,
            max_in_flight=server.max_in_flight,
            access=Access(
                token=server.auth_token.get_secret_value() if server.auth_token else None,
                allowed_hosts=server.allowed_hosts,
                allowed_origins=server.allowed_origins,
                tls=server.tls_cert is not None,
            ),
            tls=tls_context(server.tls_cert, server.tls_key)
            if server.tls_cert is not None and server.tls_key is not None else None,
        )
        media = settings.media
        self.rtsp = RtspRelay(
            self.driver, host=media.rtsp_host or server.host, port=media.rtsp_port,
            advertised_host=media.advertised_host,
            token=server.auth_token.get_secret_value() if server.auth_token else None,
        ) if media.rtsp else None

    @property
    def url(self) -> str:
        host = self.server.host
        host = f"[{host}]" if ":" in host else host
        scheme = "wss" if self.server.tls is not None else "ws"
        return f"{scheme}://{host}:{self.server.port}"

    async def start(self) -> None:
        """Start the backends first: clients refuse a driver that is not yet connected.  The
        RTSP server comes before them, so that every camera added gets its URL."""
        if self.rtsp is not None:
            try:
                await self.rtsp.start()
            except OSError as exc:
                log.warning("RTSP port unavailable; cameras are not served over RTSP",
                            port=self.rtsp.server.port, reason=exc.strerror)
                self.rtsp = None
            else:
                self.driver.rtsp = self.rtsp
        await self.driver.start()
        await self.server.start()

    async def stop(self) -> None:
        """Clients are told and closed while the backends stop: together, within the
        shutdown limit; RTSP players go first."""
        if self.rtsp is not None:
            await self.rtsp.close()
        await asyncio.gather(self.server.stop(grace=SHUTDOWN_SECONDS / 2), self.driver.stop())

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then shut down cleanly within a few seconds."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        log.info("eufy-bridge ready", url=self.url, stations=len(self.driver.stations),
                 devices=len(self.driver.devices))
        if ready is not None:
            ready()
        try:
            await stop.wait()
            log.info("shutting down")
        finally:
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await self.stop()
