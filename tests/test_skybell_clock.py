"""The SkyBell cloud's clock and the bridge's: activity times are the cloud's, LAN packets are
timed by the bridge, and neither clock is trusted to agree with the other."""

from __future__ import annotations

import time
from email.utils import formatdate

import orjson
import pytest

from bridge.backends.skybell.client import SkyBellClient
from bridge.backends.skybell.events import ACTIVITY_IDS, EventLedger

HOUR_MS = 3_600_000


def test_the_clouds_clock_is_read_from_the_date_of_its_answers():
    client = SkyBellClient("http://127.0.0.1:9", api_key="key")
    client._note_clock(formatdate(time.time() - 3600, usegmt=True))
    assert client.clock_offset_ms == pytest.approx(-HOUR_MS, abs=1500)
    assert client.cloud_now_ms() == pytest.approx(time.time() * 1000 - HOUR_MS, abs=1500)


@pytest.mark.parametrize("date", [None, "", "yesterday", "Wed, 25 Nov 99999 10:00:00 GMT",
                                  "\x00" * 40])
def test_an_answer_without_a_usable_date_leaves_the_clock_as_it_was(date):
    client = SkyBellClient("http://127.0.0.1:9", api_key="key")
    client._note_clock(formatdate(time.time() + 60, usegmt=True))
    offset = client.clock_offset_ms
    client._note_clock(date)
    assert client.clock_offset_ms == offset


def test_activity_ids_outlive_the_lan_matching_memory_and_a_restart():
    """An activity read back long after it happened (a cloud clock set back an hour brings
    the hour-old record into the polled window again) is still known."""
    ledger = EventLedger()
    now = int(time.time() * 1000)
    assert ledger.cloud("bell", "doorbell", "old", now - 2 * HOUR_MS)
    assert ledger.lan("bell", "motion")  # the matching memory forgets the old entry
    assert all(entry.activity_id != "old" for entry in ledger.seen)
    restored = EventLedger.from_json(orjson.loads(orjson.dumps(ledger.to_json())))
    assert not restored.cloud("bell", "doorbell", "old", now)


def test_activity_ids_are_kept_by_count_oldest_forgotten_first():
    ledger = EventLedger()
    now = int(time.time() * 1000)
    for n in range(ACTIVITY_IDS + 1):
        ledger.cloud("bell", "motion", f"a{n}", now - n * 60_000)
    assert len(ledger.to_json()["ids"]) == ACTIVITY_IDS
    assert ledger.cloud("bell", "motion", "a0", now)  # the oldest went first
    assert not ledger.cloud("bell", "motion", f"a{ACTIVITY_IDS}", now)
