"""The SkyBell live view's signalling channel: Kinesis Video Streams WebRTC, as the viewer.

The cloud's live-view answer names a signalling channel and a presigned ``wss://`` URL to it.
That URL expires within minutes (``X-Amz-Expires``), and the answer may be a little old by the
time it is used, so the viewer signs a fresh URL itself from the temporary credentials that come
with it when the given one is about to lapse.  Messages are JSON with a base64 JSON payload.
Neither URL is ever logged: both carry a session token.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from bridge import sigv4

log = structlog.get_logger(component="bridge.skybell")

SERVICE = "kinesisvideo"
MAX_MESSAGE = 64 * 1024
URL_MARGIN = 15.0
"""A signed URL with less than this many seconds left is signed afresh."""


class SignallingError(Exception):
    """The signalling channel could not be reached, or refused the viewer."""


def viewer_url(answer: dict[str, Any], *, now: float | None = None) -> str:
    """The URL to open: the answer's ``signedWSS`` while it is valid, else one signed here."""
    moment = time.time() if now is None else now
    given = answer.get("signedWSS")
    if isinstance(given, str) and given.startswith(("wss://", "ws://")):
        expiry = sigv4.expires_at(sigv4.query_of(given))
        if expiry is not None and expiry - URL_MARGIN > moment:
            return given
    try:
        credentials = answer["credentials"]
        channel = str(answer["channelARN"])
        endpoint = next((str(e["ResourceEndpoint"]) for e in answer.get("endpoints") or ()
                         if isinstance(e, dict) and e.get("Protocol") == "WSS"), None) \
            or str(given).split("?", 1)[0]
        region = str(answer.get("aws_region") or channel.split(":")[3])
        access_key = str(credentials["AccessKeyId"])
        secret_key = str(credentials["SecretAccessKey"])
        token = credentials.get("SessionToken")
    except (KeyError, IndexError, TypeError) as exc:
        raise SignallingError(f"the live-view answer cannot be signed afresh ({exc!r})") \
            from None
    if urlsplit(endpoint).scheme not in ("ws", "wss"):
        raise SignallingError("the live-view answer names no WebSocket endpoint")
    log.info("signing a fresh signalling URL", reason="the given one expired")
    return sigv4.presign(endpoint, access_key=access_key, secret_key=secret_key,
                         session_token=str(token) if token else None, region=region,
                         service=SERVICE, params={"X-Amz-ChannelARN": channel,
                                                  "X-Amz-ClientId":
                                                      f"eufy-bridge-{secrets.token_hex(6)}"})


class Signalling:
    """One viewer's signalling connection."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str) -> Signalling:
        """Connect (the caller bounds the time it may take)."""
        try:
            ws = await http.ws_connect(url, max_msg_size=MAX_MESSAGE, heartbeat=30.0,
                                       timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
        except aiohttp.WSServerHandshakeError as exc:
            raise SignallingError(f"the signalling channel refused the viewer "
                                  f"({exc.status})") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise SignallingError(f"the signalling channel is unreachable "
                                  f"({type(exc).__name__})") from None
        return cls(ws)

    async def send(self, action: str, payload: dict[str, Any]) -> None:
        encoded = base64.b64encode(json.dumps(payload).encode()).decode()
        await self._ws.send_json({"action": action, "messagePayload": encoded})

    async def messages(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(type, payload)`` of each message until the channel closes; malformed ones and
        status answers are logged and skipped."""
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                body = json.loads(message.data)
                kind = str(body.get("messageType") or body.get("action") or "")
                if kind == "STATUS_RESPONSE":
                    status = body.get("statusResponse") or {}
                    log.warning("the signalling channel reports a problem",
                                status=status.get("statusCode"),
                                error=status.get("errorType"))
                    continue
                payload = json.loads(base64.b64decode(body["messagePayload"], validate=True))
                if not isinstance(payload, dict):
                    raise ValueError("the payload is not an object")
            except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
                log.warning("malformed signalling message skipped")
                continue
            yield kind, payload

    async def close(self) -> None:
        await self._ws.close()
