"""SkyBell's local UDP packets (port 5000): the two fixed packets of the API documentation,
in order "button pressed" and "motion".

They carry no device identity; the sender's IP address tells which doorbell it was.
"""

from __future__ import annotations

# A little-endian length (45) and a constant base64 text, byte for byte as documented.
BUTTON_PRESSED = b"\x2d\x00\x00\x00" + b"U2FsdGVkX19I2qbfYVjEx55dE0IwT1MGJQO7+10uYsQ=\n"
MOTION = b"\x2d\x00\x00\x00" + b"U2FsdGVkX19D5MkIkoMdNaaRL9ndCFYnMVKpi/ylBq8=\n"
PACKETS = {BUTTON_PRESSED: "doorbell", MOTION: "motion"}


def kind(packet: bytes) -> str | None:
    """``doorbell``, ``motion``, or None for anything else."""
    return PACKETS.get(packet)
