"""AWS Signature Version 4 query signing (presigned URLs).

SkyBell's live view runs over Amazon Kinesis Video Streams WebRTC signalling, reached through a
presigned ``wss://`` URL.  The cloud hands one out, but it expires within minutes, so the bridge
signs a fresh one from the temporary credentials that come with it; the simulator checks what
viewers bring the same way.  This is the one implementation both use.  It is written here rather
than taken from botocore, whose data files weigh tens of megabytes for these forty lines; the
tests hold it to botocore's answers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_PAYLOAD = hashlib.sha256(b"").hexdigest()


def _encode(value: str) -> str:
    """URI-encode as SigV4 wants: only ``A-Za-z0-9-_.~`` stay as they are."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))


def _host(url: str) -> str:
    """The ``host`` header a client sends for ``url`` (the port only when not the default)."""
    parts = urlsplit(url)
    default = {"https": 443, "wss": 443, "http": 80, "ws": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def signature(url: str, params: Mapping[str, str], secret_key: str, *, region: str,
              service: str, stamp: str) -> str:
    """The hex signature of a GET of ``url`` (path from the URL) with query ``params``
    (``X-Amz-Signature`` excluded), signed at ``stamp`` (``YYYYMMDDTHHMMSSZ``)."""
    path = urlsplit(url).path or "/"
    request = "\n".join(["GET", quote(path, safe="/-_.~"), canonical_query(params),
                         f"host:{_host(url)}", "", "host", EMPTY_PAYLOAD])
    day = stamp[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope,
                         hashlib.sha256(request.encode()).hexdigest()])
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def presign(url: str, *, access_key: str, secret_key: str, session_token: str | None,
            region: str, service: str, params: Mapping[str, str] | None = None,
            expires: int = 299, now: datetime | None = None) -> str:
    """``url`` (scheme, host and path; no query) presigned for a GET carrying ``params``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    query = {
        **(params or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{stamp[:8]}/{region}/{service}/aws4_request",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    if session_token:
        query["X-Amz-Security-Token"] = session_token
    signed = signature(url, query, secret_key, region=region, service=service, stamp=stamp)
    base = url.split("?", 1)[0]
    if urlsplit(base).path == "":
        base += "/"
    return f"{base}?{canonical_query(query)}&X-Amz-Signature={signed}"


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL (the last of a repeated name wins)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def expires_at(params: Mapping[str, str]) -> float | None:
    """When a presigned URL stops being valid (Unix seconds), None when it cannot tell."""
    try:
        signed = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return signed.timestamp() + int(params["X-Amz-Expires"])
    except (KeyError, ValueError):
        return None
