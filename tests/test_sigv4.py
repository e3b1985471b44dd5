"""Presigned URLs for the SkyBell live view's signalling channel, held to botocore's answers."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bridge import sigv4

NOW = datetime(2024, 2, 29, 17, 31, 11, tzinfo=UTC)
CHANNEL = "arn:aws:kinesisvideo:us-east-1:000000000000:channel/123_abc/1707500753706"
KEYS = {"access_key": "ASIAEXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session_token": "FwoGZXIvYXdzE+/token=="}


def botocore_url(url: str, params: dict[str, str], session_token: str | None) -> str:
    credentials = Credentials(KEYS["access_key"], KEYS["secret_key"], session_token)
    auth = SigV4QueryAuth(credentials, "kinesisvideo", "us-east-1", expires=299)
    request = AWSRequest(method="GET", url=url, params=params)
    auth.add_auth(request)
    request.prepare()
    return request.url


def ours(url: str, params: dict[str, str], session_token: str | None,
         now: datetime = NOW) -> str:
    return sigv4.presign(url, access_key=KEYS["access_key"], secret_key=KEYS["secret_key"],
                         session_token=session_token, region="us-east-1",
                         service="kinesisvideo", params=params, expires=299, now=now)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.mark.parametrize("url", ["wss://v-ef08a1db.kinesisvideo.us-east-1.amazonaws.com/",
                                 "ws://127.0.0.1:45123/_kvs/"])
@pytest.mark.parametrize("token", [KEYS["session_token"], None])
def test_the_signature_is_the_one_botocore_computes(url, token):
    params = {"X-Amz-ChannelARN": CHANNEL, "X-Amz-ClientId": "eufy-bridge-1f2e"}
    theirs = query(botocore_url(url, params, token))
    signed_at = datetime.strptime(theirs["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    mine = query(ours(url, params, token, signed_at))
    assert mine["X-Amz-Signature"] == theirs["X-Amz-Signature"]
    assert mine == theirs


def test_changing_any_signed_parameter_breaks_the_signature():
    url = ours("ws://127.0.0.1:45123/_kvs/", {"X-Amz-ChannelARN": CHANNEL,
                                              "X-Amz-ClientId": "viewer"}, "token")
    params = query(url)
    claimed = params.pop("X-Amz-Signature")
    assert sigv4.signature(url, params, KEYS["secret_key"], region="us-east-1",
                           service="kinesisvideo", stamp=params["X-Amz-Date"]) == claimed
    for name in params:
        tampered = {**params, name: params[name] + "x"}
        assert sigv4.signature(url, tampered, KEYS["secret_key"], region="us-east-1",
                               service="kinesisvideo", stamp=params["X-Amz-Date"]) != claimed


def test_a_url_tells_when_it_expires():
    url = ours("wss://example.com/", {}, None)
    assert sigv4.expires_at(sigv4.query_of(url)) == NOW.timestamp() + 299
    assert sigv4.expires_at({"X-Amz-Date": "garbage", "X-Amz-Expires": "1"}) is None
