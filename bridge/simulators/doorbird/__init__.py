"""A simulated DoorBird door station: its LAN HTTP API, UDP event packets and monitor streams."""

from bridge.simulators.doorbird.device import DoorBirdConfig, DoorBirdDevice
from bridge.simulators.doorbird.server import DoorBirdSimulator

__all__ = ["DoorBirdConfig", "DoorBirdDevice", "DoorBirdSimulator"]
