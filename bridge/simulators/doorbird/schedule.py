"""The station's schedule (``schedule.cgi``): what a new station lists, what it accepts, and
when an output runs.

A real station never lists an empty schedule: the DoorBird app's setup leaves an entry per call
button, one for the motion sensor and one for the relay, each with the app's own outputs.  Home
Assistant's DoorBird tests hold such answers recorded from stations
(``tests/components/doorbird/fixtures/schedule.json``), and clients that only attach their
outputs to existing entries, as Home Assistant does, depend on it.
"""

from __future__ import annotations

import time
from typing import Any

INPUTS = ("doorbell", "motion", "relay", "rfid", "fingerprint", "input")

# How stations list "always": a weekly span whose start lies after its end wraps around the
# week (recorded answers show 108000 -> 107999; Home Assistant writes 104400 -> 104399).
STATION_ALWAYS: dict[str, Any] = {"weekdays": [{"to": "107999", "from": "108000"}]}


def factory_schedule(buttons: int, relays: list[str]) -> list[dict[str, Any]]:
    """The schedule of a station set up with the DoorBird app: push notifications for every
    call button and the motion sensor, and an entry without outputs for the first relay.
    Outputs carry no ``enabled`` key, as recorded answers show (missing means enabled)."""

    def notify() -> dict[str, Any]:
        return {"event": "notify", "param": "", "schedule": {
            "weekdays": [dict(span) for span in STATION_ALWAYS["weekdays"]]}}

    entries: list[dict[str, Any]] = [
        {"input": "doorbell", "param": str(button), "output": [notify()]}
        for button in range(1, buttons + 1)]
    entries.append({"input": "motion", "param": "", "output": [notify()]})
    physical = [relay for relay in relays if "@" not in relay]
    if physical:
        entries.append({"input": "relay", "param": physical[0], "output": []})
    return entries


def invalid_entry(entry: Any) -> str | None:
    """Why a posted schedule entry cannot be stored, or None when it can.  Checked in full
    here, so that a later ring never meets a malformed entry."""
    if not isinstance(entry, dict) or entry.get("input") not in INPUTS:
        return f"input is one of {', '.join(INPUTS)}"
    if not isinstance(entry.get("param", ""), str):
        return "param is a string"
    outputs = entry.get("output")
    if not isinstance(outputs, list):
        return "output is a list"
    for output in outputs:
        if not isinstance(output, dict) or not isinstance(output.get("event"), str) \
                or not isinstance(output.get("param", ""), str):
            return "each output has an event and a string param"
        schedule = output.get("schedule", {})
        if not isinstance(schedule, dict):
            return "an output's schedule is an object"
        for key in ("from-to", "weekdays"):
            spans = schedule.get(key, [])
            if not isinstance(spans, list) or not all(_span(s) for s in spans):
                return f"{key} holds spans of whole seconds"
    return None


def _span(span: Any) -> bool:
    return isinstance(span, dict) and all(
        isinstance(span.get(end), str | int) and str(span.get(end)).isdigit()
        for end in ("from", "to"))


def active(schedule: dict[str, Any], now: float) -> bool:
    """Whether an output with this schedule runs at ``now`` (an empty schedule never runs)."""
    once = schedule.get("once")
    if isinstance(once, dict) and str(once.get("valid")) == "1":
        return True
    if any(int(span["from"]) <= now <= int(span["to"]) for span in schedule.get("from-to", [])):
        return True
    local = time.localtime(now)
    since_sunday = ((local.tm_wday + 1) % 7) * 86400 + local.tm_hour * 3600 \
        + local.tm_min * 60 + local.tm_sec
    return any(_in_week_span(int(span["from"]), int(span["to"]), since_sunday)
               for span in schedule.get("weekdays", []))


def _in_week_span(start: int, end: int, moment: int) -> bool:
    """A span whose start is after its end runs from the start through the week's end and
    on from Sunday until its end: with ``start == end + 1`` that is the whole week."""
    if start <= end:
        return start <= moment <= end
    return moment >= start or moment <= end
