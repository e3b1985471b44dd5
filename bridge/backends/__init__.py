"""Vendor backends, built from their configuration sections.

Each vendor package registers a factory for its section here; the rest of the bridge only sees
:class:`bridge.driver.Backend` instances.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.driver import Backend
from bridge.settings import ConfigError, Settings

FACTORIES: dict[str, Callable[[Any], Backend]] = {}
"""Section name (``doorbird``, ``skybell``) to a function building one backend per entry."""


def build_backends(settings: Settings) -> list[Backend]:
    backends: list[Backend] = []
    for section in ("doorbird", "skybell"):
        entries = getattr(settings, section)
        if not entries:
            continue
        factory = FACTORIES.get(section)
        if factory is None:
            raise ConfigError(f"{section}: this version of eufy-bridge has no {section} backend")
        backends.extend(factory(entry) for entry in entries)
    return backends
