"""DoorBird's encrypted UDP event packets (LAN-2-LAN API rev 0.36; PROTOCOL.md §2).

Version 2: ``DE AD BE 02``, an 8-byte nonce and 34 bytes of ciphertext sealed with the original
ChaCha20-Poly1305 construction of libsodium (8-byte nonce, no associated data) under the first
32 bytes of the user's ``NOTIFICATION_ENCRYPTION_KEY``.  Version 1 (older firmware) carries
Argon2i parameters and a salt instead, and its key is derived from the first five characters
of the password.  The plaintext is INTERCOM_ID (6 ASCII), EVENT (8 ASCII, space padded) and a
big-endian Unix TIMESTAMP (4).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from nacl.bindings import (
    crypto_aead_chacha20poly1305_decrypt,
    crypto_aead_chacha20poly1305_encrypt,
)
from nacl.exceptions import CryptoError
from nacl.pwhash import argon2i

IDENT = b"\xde\xad\xbe"
V1, V2 = 1, 2
_V1_HEADER = struct.Struct("!4sII16s8s")  # ident+version, opslimit, memlimit, salt, nonce
_PLAINTEXT = struct.Struct("!6s8sI")
PLAINTEXT_SIZE = _PLAINTEXT.size  # 18
CIPHERTEXT_SIZE = PLAINTEXT_SIZE + 16  # with the Poly1305 tag
V2_SIZE = 4 + 8 + CIPHERTEXT_SIZE
V1_SIZE = _V1_HEADER.size + CIPHERTEXT_SIZE


@dataclass(frozen=True, slots=True)
class DoorBirdEvent:
    """One decrypted event: who it is for, what happened, and when."""

    intercom_id: str
    event: str
    timestamp: int
    nonce: bytes = field(default=b"", compare=False)
    """The packet's nonce: a copy of a packet carries its nonce, a new packet a fresh one."""

    @property
    def is_motion(self) -> bool:
        return self.event == "motion"

    @property
    def doorbell(self) -> int | None:
        """The call button's number, for a ring (``1`` on single-button stations)."""
        if self.event.isdigit():
            return int(self.event)
        return 1 if self.event == "doorbell" else None


def notification_key(raw: str | bytes) -> bytes:
    """The ChaCha20-Poly1305 key: the first 32 bytes of ``NOTIFICATION_ENCRYPTION_KEY``."""
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) < 32:
        raise ValueError("a notification key has at least 32 bytes")
    return data[:32]


def v1_key(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """Argon2i key of version 1 packets, from the first five characters of the password.

    Deliberately slow (tens of milliseconds at the interactive limits): never call it on the
    event loop; :class:`bridge.backends.doorbird.v1keys.V1Keys` runs it in a worker thread.
    """
    return argon2i.kdf(32, password[:5].encode(), salt, opslimit=opslimit, memlimit=memlimit)


def _plaintext(intercom_id: str, event: str, timestamp: int) -> bytes:
    return _PLAINTEXT.pack(intercom_id.encode()[:6].ljust(6), event.encode()[:8].ljust(8),
                           timestamp & 0xFFFFFFFF)


def encode_v2(key: bytes, intercom_id: str, event: str, timestamp: int,
              nonce: bytes | None = None) -> bytes:
    nonce = os.urandom(8) if nonce is None else nonce
    sealed = crypto_aead_chacha20poly1305_encrypt(
        _plaintext(intercom_id, event, timestamp), None, nonce, key)
    return IDENT + bytes([V2]) + nonce + sealed


def encode_v1(password: str, intercom_id: str, event: str, timestamp: int,
              opslimit: int = argon2i.OPSLIMIT_MIN, memlimit: int = argon2i.MEMLIMIT_MIN) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(8)
    key = v1_key(password, salt, opslimit, memlimit)
    sealed = crypto_aead_chacha20poly1305_encrypt(
        _plaintext(intercom_id, event, timestamp), None, nonce, key)
    return _V1_HEADER.pack(IDENT + bytes([V1]), opslimit, memlimit, salt, nonce) + sealed


def version(packet: bytes) -> int | None:
    """The version of a well-formed event packet; None for keep-alives and garbage."""
    if packet[:3] != IDENT or len(packet) < 4:
        return None
    if (packet[3], len(packet)) in ((V2, V2_SIZE), (V1, V1_SIZE)):
        return packet[3]
    return None


def decode(packet: bytes, key: bytes) -> DoorBirdEvent | None:
    """Decrypt one version 2 packet; None for anything else, other users' packets included.

    Packets for another user fail to decrypt (each user has a key of their own), so they are
    None too; callers still compare ``intercom_id`` with their user name.
    """
    if version(packet) != V2:
        return None
    return _open(packet[12:], packet[4:12], key)


@dataclass(frozen=True, slots=True)
class V1Packet:
    """A version 1 packet before its key is known: the key costs an Argon2i derivation."""

    opslimit: int
    memlimit: int
    salt: bytes
    nonce: bytes
    ciphertext: bytes

    @property
    def derivation(self) -> tuple[bytes, int, int]:
        """What the key depends on besides the password (the cache key of derived keys)."""
        return self.salt, self.opslimit, self.memlimit

    def open(self, key: bytes) -> DoorBirdEvent | None:
        return _open(self.ciphertext, self.nonce, key)


def parse_v1(packet: bytes) -> V1Packet | None:
    """The header of a version 1 packet whose Argon2i cost is what DoorBird firmware sends.

    The sender chooses opslimit and memlimit, so a packet asking for more than libsodium's
    interactive limits (4 passes, 32 MiB) is refused unread: it can only be an attempt to make
    the bridge burn CPU and memory.
    """
    if version(packet) != V1:
        return None
    _, ops, mem, salt, nonce = _V1_HEADER.unpack_from(packet)
    if not (argon2i.OPSLIMIT_MIN <= ops <= argon2i.OPSLIMIT_INTERACTIVE
            and argon2i.MEMLIMIT_MIN <= mem <= argon2i.MEMLIMIT_INTERACTIVE):
        return None
    return V1Packet(ops, mem, salt, nonce, packet[_V1_HEADER.size:])


def _open(ciphertext: bytes, nonce: bytes, key: bytes) -> DoorBirdEvent | None:
    try:
        plain = crypto_aead_chacha20poly1305_decrypt(ciphertext, None, nonce, key)
    except CryptoError:
        return None
    intercom, event, timestamp = _PLAINTEXT.unpack(plain)
    try:
        return DoorBirdEvent(intercom.decode("ascii").strip(), event.decode("ascii").strip(),
                             timestamp, nonce)
    except UnicodeDecodeError:
        return None
