"""``eufy-bridge --check-config FILE``: the configuration is valid, and each backend is tried
once, with what it found printed; nothing is served."""

from __future__ import annotations

import asyncio

from bridge.backends import build_backends
from bridge.driver import Driver, DriverEvent
from bridge.settings import ConfigError, Settings


async def check_configuration(settings: Settings, timeout: float = 30.0) -> int:
    """0 when every backend found its devices, 1 otherwise."""
    try:
        backends = build_backends(settings)
    except ConfigError as exc:
        print(f"configuration: {exc}")
        return 2
    print(f"configuration: valid ({len(backends)} backend{'s' * (len(backends) != 1)})")
    failures = 0
    for backend in backends:
        driver = Driver([backend])
        errors: list[str] = []
        driver.bus.subscribe(lambda event, errors=errors: _collect(event, errors))
        try:
            async with asyncio.timeout(timeout):
                await driver.start()
        except TimeoutError:
            errors.append(f"no answer within {timeout:g} s")
        stations = list(driver.stations.values())
        devices = list(driver.devices.values())
        ok = backend.connected and bool(stations) and not errors
        failures += not ok
        print(f"{backend.vendor}: {'ok' if ok else 'FAILED'}"
              + "".join(f" - {e}" for e in errors))
        for station in stations:
            mark = "" if station.connected else " (disconnected)"
            print(f"  station {station.serial}: {station.name} ({station.properties.get('model')})"
                  f"{mark}")
        for device in devices:
            print(f"  device  {device.serial}: {device.name} (type {device.type})")
        await driver.stop()
    return 1 if failures else 0


def _collect(event: DriverEvent, errors: list[str]) -> None:
    if event.event == "connection error":
        errors.append(str(event.data.get("error", {}).get("message", "connection error")))
