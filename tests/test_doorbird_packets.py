"""DoorBird UDP packets: the worked example of the LAN-2-LAN document, and round trips."""

from __future__ import annotations

import pytest

from bridge.backends.doorbird import packets

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
    assert packets.decode(packet, packets.notification_key(EXAMPLE_KEY), "secret") is None


def test_motion_round_trip():
    key = packets.notification_key("k" * 40)
    event = packets.decode(packets.encode_v2(key, "abcdef", "motion", 1700000000), key)
    assert event == packets.DoorBirdEvent("abcdef", "motion", 1700000000)
    assert event.is_motion and event.doorbell is None


def test_version_one_packets_use_an_argon2i_key_from_the_password():
    packet = packets.encode_v1("secret-password", "abcdef", "2", 1700000001)
    assert len(packet) == packets.V1_SIZE
    assert packets.decode(packet, None, "secret-password") == packets.DoorBirdEvent(
        "abcdef", "2", 1700000001)
    assert packets.decode(packet, None, "other-password") is None
    # only the first five characters of the password make the key
    assert packets.decode(packet, None, "secreXXXXXX") is not None


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        packets.notification_key("short")
