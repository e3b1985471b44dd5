"""A simulated SkyBell cloud: its REST API, webhooks, activities and the doorbells' LAN packets."""

from bridge.simulators.skybell.cloud import CloudConfig, SkyBellCloud
from bridge.simulators.skybell.server import SkyBellSimulator

__all__ = ["CloudConfig", "SkyBellCloud", "SkyBellSimulator"]
