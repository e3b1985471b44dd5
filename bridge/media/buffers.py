"""Binary media as eufy clients read it: a Node Buffer rendered by ``JSON.stringify``.

A ``livestream video data`` event carries each H.264 access unit as
``{"type":"Buffer","data":[0,0,0,1,103,...]}``: every byte becomes up to three digits and a
comma, so a 720p stream of 250 kB/s turns into nearly 1 MB/s of JSON text, and the encoder is
the hottest code of a live view.  ``orjson`` of ``list(data)`` manages about 90 to 110 MB/s
of H.264 here; the two table-driven encoders below do about twice that (``bench/media.py``),
so one core keeps up with dozens of streams:

* small buffers (P-frames, audio): each byte is looked up as a zero-padded 4-byte token
  (``"7,\\0\\0"``, ``"42,\\0"``, ``"255,"``) and the padding is deleted by ``bytes.translate``,
  which is fast while the 4n-byte intermediate stays in cache and costs only three calls;
* large buffers (key frames): bytes are taken in pairs, each pair looked up as one 8-byte
  token (``"255,255,"``, zero-padded) and written at its place in the text.  Writes must be
  8-byte aligned to be fast, so a token lands in one of eight zeroed rows, the one whose
  alignment matches its position; the rows, shifted back by that alignment and OR-ed together,
  are the text.  This costs a few vector passes over the data and no per-byte branches.

The text of a whole event is built once per frame (see :func:`media_event`) and shared by
every connection that watches, so the cost is per stream, not per client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

Buffer = bytes | bytearray | memoryview
"""Anything holding the bytes of a frame."""

_TOKENS = [f"{value},".encode() for value in range(256)]

_TOKEN4 = np.frombuffer(b"".join(t.ljust(4, b"\0") for t in _TOKENS), dtype=np.uint32)
"""Byte value -> its token, zero-padded to 4 bytes (as they lie in memory)."""

_PAIR8 = np.frombuffer(
    b"".join((_TOKENS[low] + _TOKENS[high]).ljust(8, b"\0")
             for high in range(256) for low in range(256)),
    dtype=np.uint64)
"""A pair of bytes, read as a little-endian ``uint16``, -> both tokens, zero-padded to 8."""

_PAIR_LENGTH = np.array([len(_TOKENS[low]) + len(_TOKENS[high])
                         for high in range(256) for low in range(256)], dtype=np.uint8)

PAIRS_FROM = 6 * 1024
"""Size from which the pair encoder is the faster one (measured on H.264 access units: below
it, the pair encoder's fixed cost of a dozen array operations dominates)."""


def _digits_small(data: np.ndarray) -> bytes:
    """``"b0,b1,...,bn,"`` by padded tokens and deletion of the padding."""
    tokens = bytearray(4 * len(data))
    _TOKEN4.take(data, out=np.frombuffer(tokens, dtype=np.uint32))
    return bytes(tokens.translate(None, b"\0"))


def _digits_pairs(data: np.ndarray) -> bytes:
    """``"b0,b1,...,bn,"`` by aligned writes of pair tokens into eight rows (n >= 2)."""
    pairs = data[: len(data) & ~1].view("<u2")
    count = len(pairs)
    starts = np.empty(count, dtype=np.intp)
    starts[0] = 0
    np.cumsum(_PAIR_LENGTH.take(pairs[:-1]), dtype=np.intp, out=starts[1:])
    total = int(starts[-1]) + int(_PAIR_LENGTH[pairs[-1]])
    # A token starting at text position p goes to row p % 8, into the aligned 8-byte slot
    # that begins at p + 8 - p % 8: row r holds the text shifted right by 8 - r bytes.
    row_words = total // 8 + 2
    slots = starts & 7
    slots *= row_words
    starts >>= 3
    slots += starts
    slots += 1
    rows = np.zeros(8 * row_words, dtype=np.uint64)
    rows[slots] = _PAIR8.take(pairs)
    # Row r, read from byte 8 - r on, is the text with only row r's tokens: one strided
    # view puts the eight side by side, and OR-ing them down gives the whole text.
    shifted = np.ndarray((8, total), dtype=np.uint8, buffer=rows, offset=8,
                         strides=(8 * row_words - 1, 1))
    text = np.bitwise_or.reduce(shifted, axis=0)
    odd = _TOKENS[int(data[-1])] if len(data) & 1 else b""
    return text.tobytes() + odd


def buffer_digits(data: Buffer) -> bytes:
    """The bytes as decimal numbers, each followed by a comma (``b"1,2,255,"``); empty for no
    data.  The trailing comma lets callers close the list without another copy."""
    array = np.frombuffer(data, dtype=np.uint8)
    if len(array) < PAIRS_FROM:
        return _digits_small(array)
    return _digits_pairs(array)


_OPEN = b'{"type":"Buffer","data":['
_CLOSE = b"]}"


def buffer_json(data: Buffer) -> bytes:
    """``{"type":"Buffer","data":[...]}``, byte for byte what Node's ``JSON.stringify`` makes
    of a Buffer holding ``data``."""
    digits = buffer_digits(data)
    return b"".join((_OPEN, memoryview(digits)[:-1], _CLOSE))


def buffer_fragment(data: Buffer) -> orjson.Fragment:
    """The Buffer JSON of ``data`` as a value ``orjson.dumps`` inserts as it is (for example
    from its ``default`` hook), so that bytes inside any message are encoded quickly."""
    return orjson.Fragment(buffer_json(data))


def media_event(event: str, serial: str, data: Buffer, metadata: Mapping[str, Any],
                source: str = "device") -> bytes:
    """The complete text of one media event, keys in the reference server's order::

        {"type":"event","event":{"source":"device","event":"livestream video data",
         "serialNumber":"...","buffer":{"type":"Buffer","data":[...]},"metadata":{...}}}

    The buffer is encoded once and spliced into the message; callers keep the result per
    frame and schema shape and send the same text to every connection watching.
    """
    return orjson.dumps({"type": "event", "event": {
        "source": source, "event": event, "serialNumber": serial,
        "buffer": buffer_fragment(data), "metadata": metadata}})
