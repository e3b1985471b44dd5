"""The eufy-shaped world: stations, devices, properties, commands and one event bus.

Backends fill it; the server reads it.  Nothing here knows about WebSockets or schemas.
"""

from bridge.driver.backend import Backend
from bridge.driver.driver import Driver
from bridge.driver.events import DriverEvent
from bridge.driver.model import Device, Entity, PropertyMetadata, Station

__all__ = ["Backend", "Device", "Driver", "DriverEvent", "Entity", "PropertyMetadata", "Station"]
