"""H.264 access units the way eufy clients take them.

Clients expect one access unit per ``livestream video data`` event, in Annex B with 4-byte
start codes, with the SPS and PPS in front of every key frame so that a player can start at any
key frame.  Demuxers deliver less regular material: RTSP gives Annex B with the parameter sets
only in the SDP (PyAV's ``extradata``), MP4 gives length-prefixed NAL units with the parameter
sets in an ``avcC`` record.  :class:`AccessUnits` turns either into what clients expect, without
decoding anything.
"""

from __future__ import annotations

import re

START = b"\x00\x00\x00\x01"
SPS, PPS, IDR, AUD = 7, 8, 5, 9
_START_CODE = re.compile(b"\x00\x00\x01")


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


def split_annex_b(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (3- or 4-byte start codes)."""
    starts = [m.end() for m in _START_CODE.finditer(data)]
    nals = []
    for index, begin in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nal = data[begin:end].rstrip(b"\x00") if index + 1 < len(starts) else data[begin:end]
        if nal:
            nals.append(nal)
    return nals


def split_length_prefixed(data: bytes, length_size: int) -> list[bytes]:
    """The NAL units of an MP4 sample (each prefixed by its big-endian length)."""
    nals, pos = [], 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > len(data):
            raise ValueError("a NAL unit runs past the end of its sample")
        nals.append(data[pos:pos + size])
        pos += size
    return nals


def parse_avcc(record: bytes) -> tuple[int, list[bytes]]:
    """NAL length size and parameter sets of an ``avcC`` decoder configuration record."""
    if len(record) < 7 or record[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (record[4] & 0x03) + 1
    sets, pos = [], 5
    for count_mask in (0x1F, 0xFF):
        if pos >= len(record):
            break
        count = record[pos] & count_mask
        pos += 1
        for _ in range(count):
            size = int.from_bytes(record[pos:pos + 2], "big")
            sets.append(record[pos + 2:pos + 2 + size])
            pos += 2 + size
    return length_size, sets


class AccessUnits:
    """Normalises demuxed H.264 packets into client-ready access units."""

    def __init__(self, extradata: bytes | None = None) -> None:
        self.length_size = 0  # 0: packets are Annex B
        self._sps: bytes | None = None
        self._pps: bytes | None = None
        if extradata:
            if extradata[0] == 1:
                self.length_size, sets = parse_avcc(extradata)
            else:
                sets = split_annex_b(extradata)
            self._remember(sets)

    @property
    def has_parameter_sets(self) -> bool:
        return self._sps is not None and self._pps is not None

    def _remember(self, nals: list[bytes]) -> None:
        for nal in nals:
            if nal_type(nal) == SPS:
                self._sps = nal
            elif nal_type(nal) == PPS:
                self._pps = nal

    def convert(self, packet: bytes) -> tuple[bytes, bool] | None:
        """The access unit of one packet and whether it is a key frame; None when it holds
        no picture yet usable (a P-frame before the first parameter sets)."""
        nals = split_length_prefixed(packet, self.length_size) if self.length_size \
            else split_annex_b(packet)
        self._remember(nals)
        keyframe = any(nal_type(n) == IDR for n in nals)
        body = [n for n in nals if nal_type(n) not in (SPS, PPS, AUD)]
        if not body:
            return None
        if keyframe:
            if not self.has_parameter_sets:
                return None
            body = [self._sps, self._pps, *body]  # type: ignore[list-item]
        elif not self.has_parameter_sets:
            return None
        return START + START.join(body), keyframe
