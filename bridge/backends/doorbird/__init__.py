"""DoorBird door stations over their LAN API."""

from bridge.backends.doorbird.backend import DoorBirdBackend

__all__ = ["DoorBirdBackend"]
