"""Ready-made ``authorize`` checks for the RTSP server.

A check sees the whole request, so each user of the server brings its own rule: the DoorBird
simulator accepts Basic credentials or a ``?sessionid=`` in the URL (as the real station does,
so that no password travels in a URL), the bridge a client token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from bridge.media.rtsp.protocol import Request

Check = Callable[[Request], bool]


def basic(user: str, password: str) -> Check:
    """Basic credentials, compared in constant time."""
    expected = f"{user}:{password}".encode()

    def check(request: Request) -> bool:
        given = request.basic_credentials()
        return given is not None and hmac.compare_digest(":".join(given).encode(), expected)

    return check


def query_token(name: str, valid: Callable[[str], bool]) -> Check:
    """A token in the URL's query (``?sessionid=...``) that ``valid`` accepts."""

    def check(request: Request) -> bool:
        values = request.query.get(name)
        return bool(values) and valid(values[0])

    return check


def any_of(*checks: Check) -> Check:
    """Allowed when any of the checks allows."""
    return lambda request: any(check(request) for check in checks)
