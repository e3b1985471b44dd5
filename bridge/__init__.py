"""eufy-bridge: a eufy-security-ws compatible server for SkyBell and DoorBird doorbells."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eufy-bridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
