"""DoorBird UDP packets: the worked example of the LAN-2-LAN document, round trips, version 1
keys derived within bounds, and the replay guard."""

from __future__ import annotations

import asyncio

import pytest
from nacl.pwhash import argon2i

from bridge.backends.doorbird import packets, v1keys
from bridge.backends.doorbird.replay import ReplayGuard

# LAN-2-LAN API for DoorBird and BirdGuard, revision 0.36: the worked example.
EXAMPLE_KEY = "BHYGHyRKtGzBjku2t2jX2UKidXYQ3VqmfbKoCtxXJ6O4lgSzpgIwZ6onrSh"
EXAMPLE_PACKET = bytes.fromhex(
    "DEADBE02" "961380D4622EBEE7"
    "2A9FC3FF0BEF6264F2AE919492148BBD30EB05BDCE367C33D4293FAFE060459E6510"
)


def test_the_worked_example_decrypts():
    event = packets.decode(EXAMPLE_PACKET, packets.notification_key(EXAMPLE_KEY))
    assert event == packets.DoorBirdEvent("ghikzi", "1", 1699550033)
    assert event.doorbell == 1 and not event.is_motion


def test_the_worked_example_reencrypts_to_the_same_bytes():
    key = packets.notification_key(EXAMPLE_KEY)
    again = packets.encode_v2(key, "ghikzi", "1", 1699550033, nonce=EXAMPLE_PACKET[4:12])
    assert again == EXAMPLE_PACKET


def test_a_wrong_key_or_a_flipped_bit_is_rejected():
    key = packets.notification_key(EXAMPLE_KEY)
    assert packets.decode(EXAMPLE_PACKET, bytes(32)) is None
    damaged = bytearray(EXAMPLE_PACKET)
    damaged[20] ^= 1
    assert packets.decode(bytes(damaged), key) is None


@pytest.mark.parametrize("packet", [b"", b"\xde\xad", b"\xde\xad\xbe", b"\xde\xad\xbe\x02",
                                    b"keep-alive packet", b"\xde\xad\xbe\x03" + bytes(42),
                                    EXAMPLE_PACKET + b"x", EXAMPLE_PACKET[:-1]])
def test_keep_alives_and_garbage_are_ignored(packet):
    assert packets.decode(packet, packets.notification_key(EXAMPLE_KEY)) is None
    assert packets.parse_v1(packet) is None


def test_motion_round_trip():
    key = packets.notification_key("k" * 40)
    event = packets.decode(packets.encode_v2(key, "abcdef", "motion", 1700000000), key)
    assert event == packets.DoorBirdEvent("abcdef", "motion", 1700000000)
    assert event.is_motion and event.doorbell is None


def _open_v1(packet: bytes, password: str) -> packets.DoorBirdEvent | None:
    parsed = packets.parse_v1(packet)
    assert parsed is not None
    return parsed.open(packets.v1_key(password, *parsed.derivation))


def test_version_one_packets_use_an_argon2i_key_from_the_password():
    packet = packets.encode_v1("secret-password", "abcdef", "2", 1700000001)
    assert len(packet) == packets.V1_SIZE and packets.version(packet) == packets.V1
    assert _open_v1(packet, "secret-password") == packets.DoorBirdEvent("abcdef", "2", 1700000001)
    assert _open_v1(packet, "other-password") is None
    # only the first five characters of the password make the key
    assert _open_v1(packet, "secreXXXXXX") is not None
    assert packets.decode(packet, bytes(32)) is None  # not a version 2 packet


def _v1_header(opslimit: int, memlimit: int) -> bytes:
    packet = bytearray(packets.encode_v1("secret", "abcdef", "1", 1700000000))
    packet[4:12] = opslimit.to_bytes(4, "big") + memlimit.to_bytes(4, "big")
    return bytes(packet)


@pytest.mark.parametrize(("opslimit", "memlimit"), [
    (argon2i.OPSLIMIT_INTERACTIVE + 1, argon2i.MEMLIMIT_MIN),
    (argon2i.OPSLIMIT_MIN, argon2i.MEMLIMIT_INTERACTIVE + 1),
    (0xFFFFFFFF, 0xFFFFFFFF),
    (argon2i.OPSLIMIT_MIN - 1, argon2i.MEMLIMIT_MIN),
    (argon2i.OPSLIMIT_MIN, argon2i.MEMLIMIT_MIN - 1),
])
def test_version_one_costs_beyond_the_interactive_limits_are_refused_unread(opslimit, memlimit):
    assert packets.parse_v1(_v1_header(opslimit, memlimit)) is None


def test_version_one_costs_up_to_the_interactive_limits_are_read():
    parsed = packets.parse_v1(_v1_header(argon2i.OPSLIMIT_INTERACTIVE,
                                         argon2i.MEMLIMIT_INTERACTIVE))
    assert parsed is not None
    assert (parsed.opslimit, parsed.memlimit) == (4, 32 * 1024 * 1024)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def derivations(monkeypatch) -> list[bytes]:
    """The salts of every Argon2i derivation the bridge runs."""
    salts: list[bytes] = []
    real = packets.v1_key

    def counted(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
        salts.append(salt)
        return real(password, salt, opslimit, memlimit)

    monkeypatch.setattr(packets, "v1_key", counted)
    return salts


async def _settle(tasks: list[asyncio.Task]) -> None:
    async with asyncio.timeout(30):
        while not all(task.done() for task in tasks):
            await asyncio.sleep(0.01)


async def test_repeats_of_a_version_one_packet_share_one_derivation_and_its_cached_key(
        derivations):
    tasks: list[asyncio.Task] = []
    keys = v1keys.V1Keys("secret", lambda coro: tasks.append(asyncio.create_task(coro)))
    packet = packets.parse_v1(packets.encode_v1("secret", "abcdef", "1", 1700000000))
    derivations.clear()
    delivered: list[packets.DoorBirdEvent] = []
    for _ in range(6):  # three repeats on each of two ports, while the key is derived
        keys.open(packet, delivered.append)
    await _settle(tasks)
    assert len(derivations) == 1 and len(tasks) == 1
    assert delivered == [packets.DoorBirdEvent("abcdef", "1", 1700000000)]
    keys.open(packet, delivered.append)  # the cached key opens it at once
    assert len(delivered) == 2 and len(derivations) == 1


async def test_a_flood_of_fresh_salts_is_dropped_beyond_the_derivation_budget(derivations):
    clock = _Clock()
    tasks: list[asyncio.Task] = []
    keys = v1keys.V1Keys("secret", lambda coro: tasks.append(asyncio.create_task(coro)),
                         burst=4, rate=1.0, clock=clock)
    wire = [packets.encode_v1("secret", "abcdef", "1", 1700000000 + n) for n in range(100)]
    derivations.clear()
    delivered: list[packets.DoorBirdEvent] = []
    for raw in wire:
        keys.open(packets.parse_v1(raw), delivered.append)
    assert keys.deriving == 4 and keys.dropped == 96  # admitted or dropped, never queued
    await _settle(tasks)
    assert len(derivations) == 4 and len(delivered) == 4
    keys.open(packets.parse_v1(wire[-1]), delivered.append)
    assert keys.dropped == 97  # the bucket is empty until time passes
    clock.now += 2.0
    keys.open(packets.parse_v1(wire[-1]), delivered.append)
    await _settle(tasks)
    assert len(derivations) == 5 and delivered[-1].timestamp == 1700000099


async def test_a_packet_for_another_password_delivers_nothing(derivations):
    tasks: list[asyncio.Task] = []
    keys = v1keys.V1Keys("secret", lambda coro: tasks.append(asyncio.create_task(coro)))
    packet = packets.parse_v1(packets.encode_v1("other", "abcdef", "1", 1700000000))
    derivations.clear()
    delivered: list[packets.DoorBirdEvent] = []
    keys.open(packet, delivered.append)
    await _settle(tasks)
    assert delivered == [] and len(derivations) == 1


def test_each_event_is_new_once_and_its_repeats_are_repeats():
    guard = ReplayGuard(120, clock=_Clock())
    assert guard.check("1", 1700000000) == "new"
    assert guard.check("1", 1700000000) == "repeat"
    assert guard.check("motion", 1700000000) == "new"
    assert guard.check("1", 1700000001) == "new"


def test_a_replay_after_the_repeat_window_stays_dropped():
    clock = _Clock()
    guard = ReplayGuard(120, clock=clock)
    assert guard.check("1", 1700000000) == "new"
    clock.now += 3600
    assert guard.check("1", 1700000000) == "stale"
    clock.now += 30 * 86400
    assert guard.check("1", 1700000000) == "stale"
    assert guard.check("1", 1700000000 + 3600 + 30 * 86400) == "new"


def test_an_unseen_packet_recorded_before_the_newest_event_is_dropped_too():
    clock = _Clock()
    guard = ReplayGuard(120, clock=clock)
    assert guard.check("1", 1700000000) == "new"
    assert guard.check("motion", 1700000000 - 600) == "stale"  # recorded ten minutes earlier
    assert guard.check("motion", 1700000000 - 60) == "new"  # late, but within the window


@pytest.mark.parametrize("offset", [-86400, 86400, -1700000000])
def test_a_station_whose_clock_is_wrong_still_delivers_every_event(offset):
    clock = _Clock()
    guard = ReplayGuard(120, clock=clock)
    station = 1700000000 + offset
    for _minute in range(10):
        assert guard.check("1", int(station + clock.now)) == "new"
        assert guard.check("1", int(station + clock.now)) == "repeat"
        clock.now += 60


def test_a_station_clock_that_runs_slow_stays_within_the_window():
    clock = _Clock()
    guard = ReplayGuard(120, clock=clock)
    for _day in range(365):  # 100 ppm slow: 8.6 s a day, a year long
        assert guard.check("1", int(1700000000 + clock.now * (1 - 1e-4))) == "new"
        clock.now += 86400


def test_only_the_events_of_the_window_are_remembered():
    clock = _Clock()
    guard = ReplayGuard(120, clock=clock)
    for second in range(10_000):
        assert guard.check("motion", 1700000000 + second) == "new"
        clock.now += 1
    assert len(guard._seen) <= 122


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        packets.notification_key("short")
