"""SkyBell doorbells through the SkyBell cloud API (v5)."""

from bridge.backends.skybell.backend import SkyBellBackend

__all__ = ["SkyBellBackend"]
