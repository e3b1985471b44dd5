"""Who may talk to the bridge: the optional client token, browsers only from where they
belong, and TLS.

Browsers are the danger: any web page a user opens can make their browser open a WebSocket to
the bridge, and a page on a domain its owner points at 127.0.0.1 (DNS rebinding) can even read
the bridge's answers as if it were the bridge's own. Browsers always say where a WebSocket
comes from (``Origin``) and which name they believe they reach (``Host``), so: an ``Origin``
must be the bridge's own page on a ``Host`` no rebinding can forge (an IP address,
``localhost``, or a name the user listed), or an origin the user listed; and what browsers
load (the page) is only served to such a ``Host``. Programs other than browsers send no
``Origin`` and are told apart by the token alone.
"""

from __future__ import annotations

import hmac
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from websockets.http11 import Request

from bridge.settings import ConfigError

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN = 120
"""Characters of a hostile header kept in a log line."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: 401 (no valid token) or 403 (not from where it belongs)."""

    status: int
    reason: str


class Access:
    """The checks every HTTP request and WebSocket handshake goes through."""

    def __init__(
        self,
        *,
        token: str | None = None,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        tls: bool = False,
    ) -> None:
        self._token = token.encode() if token else None
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self.allowed_origins = frozenset(
            o for o in (_origin(value) for value in allowed_origins) if o is not None)
        self.scheme = "https" if tls else "http"

    def __repr__(self) -> str:  # the token stays out of every repr
        return f"Access(token={'set' if self._token else 'none'}, scheme={self.scheme})"

    @property
    def token_required(self) -> bool:
        return self._token is not None

    def check(self, request: Request, *, host: bool, token: bool) -> Refusal | None:
        """Whether ``request`` may proceed. ``Origin`` is checked whenever a browser sent one;
        ``host`` also requires a ``Host`` no rebinding can forge (for what browsers load),
        ``token`` the client token when one is set (for what acts)."""
        headers = request.headers
        origin = headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin, headers.get("Host")):
            return Refusal(403, "origin not allowed")
        if host and not self.host_allowed(headers.get("Host")):
            return Refusal(403, "host not allowed")
        if token and not self.token_presented(request):
            return Refusal(401, "missing or wrong token")
        return None

    def host_allowed(self, host_header: str | None) -> bool:
        """An IP address or ``localhost`` cannot be rebound; other names must be listed."""
        parsed = _host_and_port(host_header)
        if parsed is None:
            return False
        name = parsed[0]
        return _is_ip(name) or name == "localhost" or name in self.allowed_hosts

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        """A listed origin, or the bridge's own page on an acceptable ``Host``."""
        theirs = _origin(origin)
        if theirs is None:
            return False  # "null" (sandboxed frames, files) and garbage
        if theirs in self.allowed_origins:
            return True
        host = _host_and_port(host_header)
        if host is None or not self.host_allowed(host_header):
            return False
        ours = (self.scheme, host[0], host[1] or _DEFAULT_PORTS[self.scheme])
        return theirs == ours

    def token_presented(self, request: Request) -> bool:
        """``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` for clients that can only set
        a URL (browsers cannot set headers on a WebSocket)."""
        if self._token is None:
            return True
        offered: list[str] = []
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            offered.append(value.strip())
        offered += [v for k, v in parse_qsl(urlsplit(request.path).query) if k == "token"]
        # compare_digest: how long a wrong guess takes says nothing about the token
        return any(hmac.compare_digest(o.encode(), self._token) for o in offered)


def shown(value: str | None) -> str | None:
    """A header value cut short enough to log."""
    return None if value is None else value[:_SHOWN]


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the bridge on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "", a wildcard or a name: reachable from elsewhere


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 and up, the library's default ciphers)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:  # e.g. a key that is not the certificate's
        raise ConfigError(f"server.tls_cert, server.tls_key: cannot be used: {exc}") from None
    return context


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _host_and_port(header: str | None) -> tuple[str, int | None] | None:
    """``Host`` as (lower-case name without brackets, port or None); None if malformed."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        name, sep, rest = header[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        name, _, port_text = header.partition(":")
    name = name.rstrip(".")
    if not name:
        return None
    if not port_text:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


def _origin(value: str) -> tuple[str, str, int] | None:
    """An origin as (scheme, host, port), the default port filled in; None if not http(s)."""
    try:
        url = urlsplit(value.strip().lower())
        port = url.port
    except ValueError:
        return None
    if url.scheme not in _DEFAULT_PORTS or not url.hostname or url.path not in ("", "/"):
        return None
    return url.scheme, url.hostname.rstrip("."), port or _DEFAULT_PORTS[url.scheme]
