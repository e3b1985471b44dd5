"""The simulated cloud's live-view signalling, as Amazon Kinesis Video Streams runs it.

``POST /videostream`` hands a viewer a signalling channel: temporary credentials, a channel
ARN, ICE servers and a presigned ``wss://`` URL that expires within minutes.  The viewer
connects there (or to a URL it signed itself from the credentials), sends its SDP offer, and the
doorbell answers as MASTER.  This module checks what the viewer brings the way the real service
does (every signing parameter, the signature, the expiry), runs one :class:`Master` per viewer,
and can misbehave on purpose: refuse the signalling, make ICE fail, or stall the media.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import WSMsgType, web
from aiortc import RTCIceServer
from aiortc.sdp import candidate_from_sdp

from bridge import sigv4
from bridge.simulators.faults import Faults
from bridge.simulators.skybell.master import Loudspeaker, Master
from bridge.simulators.skybell.stun import StunServer
from bridge.tasks import BackgroundTasks

if TYPE_CHECKING:
    from bridge.simulators.skybell.cloud import SimDevice, SkyBellCloud

log = structlog.get_logger(component="simulator.skybell")

REGION, SERVICE = "us-east-1", "kinesisvideo"
CREDENTIAL_SECONDS = 3600
MAX_MESSAGE = 64 * 1024
CLOCK_SKEW = 300
REQUIRED = ("X-Amz-Algorithm", "X-Amz-ChannelARN", "X-Amz-ClientId", "X-Amz-Credential",
            "X-Amz-Date", "X-Amz-Expires", "X-Amz-Security-Token", "X-Amz-SignedHeaders",
            "X-Amz-Signature")
LIVE_FAULTS = {
    "kvs_refuse": "the live view's signalling endpoint answers 403",
    "kvs_ice_fail": "the doorbell's answer leads nowhere, so ICE fails",
    "kvs_stall": "live views stay connected but stop sending media",
}


@dataclass
class _Credentials:
    secret_key: str
    session_token: str
    expires: float


@dataclass
class DeviceLive:
    """A doorbell's live views: its open peer connections and what it heard."""

    masters: set[Master] = field(default_factory=set)
    peer_connections: int = 0
    loudspeaker: Loudspeaker = field(default_factory=Loudspeaker)

    def stats(self) -> dict[str, Any]:
        return {"viewers": sum(1 for m in self.masters if not m.closing),
                "peer_connections": self.peer_connections,
                "received_audio_seconds": round(self.loudspeaker.seconds, 3),
                "received_audio_hz": self.loudspeaker.pitch()}


class KinesisSignalling:
    """Channels, credentials and masters of every doorbell."""

    def __init__(self, cloud: SkyBellCloud, faults: Faults, host: str) -> None:
        self.cloud = cloud
        self.faults = faults
        self.stun = StunServer(host)
        self._credentials: dict[str, _Credentials] = {}
        self._channels: dict[str, str] = {}  # channel ARN -> device id
        self.live: dict[str, DeviceLive] = {}
        self._tasks = BackgroundTasks("simulator signalling")

    async def start(self) -> None:
        await self.stun.start()

    async def stop(self) -> None:
        for device_id in list(self.live):
            await self.end(device_id)
        await self._tasks.cancel_all()
        self.stun.stop()

    def stats(self, device_id: str) -> dict[str, Any]:
        return self.live.setdefault(device_id, DeviceLive()).stats()

    # ------------------------------------------------------------------ the start answer
    def issue(self, device: SimDevice, https: str, wss: str) -> dict[str, Any]:
        """What ``POST /videostream`` answers: a channel, credentials and a signed URL."""
        channel = next((arn for arn, owner in self._channels.items()
                        if owner == device.device_id), None)
        if channel is None:
            channel = (f"arn:aws:kinesisvideo:{REGION}:000000000000:channel/"
                       f"{device.serial}_{device.device_id}/{int(time.time() * 1000)}")
            self._channels[channel] = device.device_id
        now = datetime.now(UTC)
        access_key = "ASIA" + secrets.token_hex(8).upper()
        keys = _Credentials(secrets.token_urlsafe(30), secrets.token_urlsafe(60),
                            now.timestamp() + CREDENTIAL_SECONDS)
        self._credentials[access_key] = keys
        client_id = f"VIEWER-{secrets.token_hex(6)}"
        seconds = self.cloud.config.kvs_url_seconds

        def signed(url: str) -> str:
            return sigv4.presign(url, access_key=access_key, secret_key=keys.secret_key,
                                 session_token=keys.session_token, region=REGION,
                                 service=SERVICE, expires=seconds, now=now,
                                 params={"X-Amz-ChannelARN": channel,
                                         "X-Amz-ClientId": client_id})

        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        signing = [json.dumps({
            "service": SERVICE, "host": host, "path": "/",
            "headers": {"X-Amz-ChannelARN": channel, "X-Amz-ClientId": client_id,
                        "Host": host, "X-Amz-Date": stamp}}) for host in (https, wss)]
        return {
            "state": True,
            "ice": [{"urls": self.stun.url}],
            "endpoints": [{"Protocol": "HTTPS", "ResourceEndpoint": https},
                          {"Protocol": "WSS", "ResourceEndpoint": wss}],
            "signed": signing,
            "channelARN": channel,
            "credentials": {
                "AccessKeyId": access_key, "SecretAccessKey": keys.secret_key,
                "SessionToken": keys.session_token,
                "Expiration": datetime.fromtimestamp(keys.expires, UTC)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z")},
            "aws_region": REGION,
            "signedWSS": signed(wss + "/"),
            "signedHTTPS": signed(https + "/"),
        }

    # ------------------------------------------------------------------ the channel
    def _check(self, request: web.Request) -> str:
        """The device id a signalling request may reach, or the HTTP error it gets."""
        if self.faults.get("kvs_refuse"):
            raise web.HTTPForbidden(text="signalling refused")
        params = dict(request.query)
        if any(name not in params for name in REQUIRED):
            raise web.HTTPForbidden(text="missing signing parameters")
        credential = params["X-Amz-Credential"].split("/")
        keys = self._credentials.get(credential[0])
        if len(credential) != 5 or keys is None \
                or params["X-Amz-Security-Token"] != keys.session_token:
            raise web.HTTPForbidden(text="unknown credentials")
        claimed = params.pop("X-Amz-Signature")
        expected = sigv4.signature(str(request.url.with_query(None)), params, keys.secret_key,
                                   region=credential[2], service=credential[3],
                                   stamp=params["X-Amz-Date"])
        if not secrets.compare_digest(claimed, expected):
            raise web.HTTPForbidden(text="signature does not match")
        expiry, now = sigv4.expires_at(params), time.time()
        if expiry is None or expiry < now or keys.expires < now \
                or expiry - int(params["X-Amz-Expires"]) > now + CLOCK_SKEW:
            raise web.HTTPForbidden(text="the signed URL has expired")
        device_id = self._channels.get(params["X-Amz-ChannelARN"])
        if device_id is None:
            raise web.HTTPNotFound(text="no such channel")
        return device_id

    async def connect(self, request: web.Request) -> web.StreamResponse:
        """``GET /_kvs/``: a viewer's signalling connection."""
        device_id = self._check(request)
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        master: Master | None = None
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                body = json.loads(message.data)
                action = body.get("action")
                payload = json.loads(base64.b64decode(body["messagePayload"], validate=True))
                if action == "SDP_OFFER":
                    if master is not None:
                        raise ValueError("one offer per connection")
                    sdp = payload.get("sdp")
                    if payload.get("type") != "offer" or not isinstance(sdp, str) \
                            or not sdp.startswith("v=0"):
                        raise ValueError("the payload is not an SDP offer")
                    master = self._master(device_id)
                    try:
                        answer = await master.answer(
                            sdp, lead_nowhere=bool(self.faults.get("kvs_ice_fail")))
                    except Exception:
                        await self._close(master)
                        master = None
                        raise ValueError("the offer cannot be answered") from None
                    await ws.send_json(_message("SDP_ANSWER", {"type": "answer",
                                                               "sdp": answer}))
                elif action == "ICE_CANDIDATE" and master is not None:
                    line = str(payload["candidate"]).removeprefix("candidate:")
                    if line:
                        candidate = candidate_from_sdp(line)
                        candidate.sdpMid = payload.get("sdpMid")
                        candidate.sdpMLineIndex = payload.get("sdpMLineIndex")
                        await master.pc.addIceCandidate(candidate)
            except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
                await ws.send_json({"messageType": "STATUS_RESPONSE", "statusResponse": {
                    "correlationId": "", "errorType": "InvalidArgumentException",
                    "statusCode": "400", "description": str(exc)[:200]}})
        return ws

    def _master(self, device_id: str) -> Master:
        device = self.cloud.devices[device_id]
        live = self.live.setdefault(device_id, DeviceLive())
        master = Master([RTCIceServer(self.stun.url)],
                        stalled=lambda: bool(self.faults.get("kvs_stall")),
                        visitor=lambda: self.cloud.recent_visitor(device),
                        loudspeaker=live.loudspeaker, ended=self._ended)
        live.masters.add(master)
        live.peer_connections += 1
        return master

    def _ended(self, master: Master) -> None:
        self._tasks.spawn(self._close(master), name="simulator live view end")

    async def _close(self, master: Master) -> None:
        for live in self.live.values():
            live.masters.discard(master)
        await master.close()

    def went_offline(self, device_id: str) -> None:
        """A doorbell that goes offline drops its live views."""
        self._tasks.spawn(self.end(device_id), name="simulator offline")

    async def end(self, device_id: str) -> None:
        """The doorbell ends its live views (``DELETE /videostream``, or it went offline)."""
        live = self.live.get(device_id)
        for master in list(live.masters if live else ()):
            await self._close(master)


def _message(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    return {"messageType": kind, "messagePayload": encoded, "senderClientId": "MASTER"}
