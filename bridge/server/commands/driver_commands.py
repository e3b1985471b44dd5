"""``driver.*`` commands: connectivity, log control, verification and event history."""

from __future__ import annotations

import time

from bridge.logs import hub
from bridge.server.commands import Request, Result, handles

_FIFTEEN_YEARS_MS = 15 * 365 * 24 * 3600 * 1000


@handles("driver.is_connected")
def is_connected(req: Request) -> Result:
    return {"connected": req.driver.connected}


@handles("driver.is_push_connected")
def is_push_connected(req: Request) -> Result:
    return {"connected": req.driver.push_connected}


@handles("driver.is_mqtt_connected")
def is_mqtt_connected(req: Request) -> Result:
    # No backend talks MQTT; the answer is honest rather than copied from the push channel.
    return {"connected": False}


@handles("driver.connect")
async def connect(req: Request) -> Result:
    return {"result": await req.driver.connect()}


@handles("driver.disconnect")
async def disconnect(req: Request) -> Result:
    await req.driver.disconnect()
    return {}


@handles("driver.poll_refresh")
async def poll_refresh(req: Request) -> Result:
    await req.driver.poll_refresh()
    return {}


@handles("driver.set_verify_code")
async def set_verify_code(req: Request) -> Result:
    return {"result": await req.driver.submit_verify_code(req.params["verifyCode"])}


@handles("driver.set_captcha")
async def set_captcha(req: Request) -> Result:
    captcha_id = req.params.get("captchaId")
    return {"result": await req.driver.submit_captcha(captcha_id, req.params["captcha"])}


@handles("driver.get_video_events", "driver.get_alarm_events", "driver.get_history_events")
async def get_events(req: Request) -> Result:
    kind = req.spec.short_name.removeprefix("get_").removesuffix("_events")
    now_ms = time.time() * 1000
    start = req.params.get("startTimestampMs", now_ms - _FIFTEEN_YEARS_MS)
    end = req.params.get("endTimestampMs", now_ms)
    events = await req.driver.get_events(
        kind, start, end, req.params.get("filter"), req.params.get("maxResults")
    )
    return {"events": events}


@handles("driver.get_log_level")
def get_log_level(req: Request) -> Result:
    return {"level": hub.level}


@handles("driver.set_log_level")
def set_log_level(req: Request) -> Result:
    level = req.params["level"]
    hub.set_level(level)
    req.driver.publish("driver", "log level changed", level=level)
    return {}


@handles("driver.start_listening_logs")
def start_listening_logs(req: Request) -> Result:
    req.session.logs = True
    return {}


@handles("driver.stop_listening_logs")
def stop_listening_logs(req: Request) -> Result:
    req.session.logs = False
    return {}


@handles("driver.is_listening_logs")
def is_listening_logs(req: Request) -> Result:
    return {"started": req.session.logs}
