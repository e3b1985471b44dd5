"""Vendor backends, built from their configuration sections.

Each configuration section names the backend class that serves its entries; vendor packages
are imported only when configured.
"""

from __future__ import annotations

from importlib import import_module

from bridge.driver import Backend
from bridge.settings import Settings

VENDORS = {
    "doorbird": "bridge.backends.doorbird:DoorBirdBackend",
    "skybell": "bridge.backends.skybell:SkyBellBackend",
}
"""Configuration section to ``module:class`` of its backend (one instance per entry)."""


def build_backends(settings: Settings) -> list[Backend]:
    backends: list[Backend] = []
    for section in ("doorbird", "skybell"):
        entries = getattr(settings, section)
        if not entries:
            continue
        module, name = VENDORS[section].split(":")
        backend_class = getattr(import_module(module), name)
        backends.extend(backend_class.from_settings(entry, settings.server.data_dir)
                        for entry in entries)
    return backends
