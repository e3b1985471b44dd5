"""RTP packetisers: H.264 (RFC 6184), G.711 µ-law (RFC 3551) and AAC (RFC 3640, AAC-hbr).

A packetiser belongs to one track of one running stream and is shared by every player of it:
media is packetised once, and each player only frames the same packets for its transport.  A
player that skips frames sees a gap in sequence numbers, which is what RTP calls loss.
"""

from __future__ import annotations

import secrets
import struct

from bridge.media.rtsp.source import AacTrack, H264Track, PcmuTrack, Track

MAX_PAYLOAD = 1400
"""Bytes of payload per packet: fits an Ethernet MTU with IP, UDP and RTP headers."""

_HEADER = struct.Struct("!BBHII")
_NAL_AUD, _NAL_SPS, _NAL_PPS, _NAL_IDR = 9, 7, 8, 5
_FU_A = 28


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without their start codes."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        start = data.find(b"\x00\x00\x01", begin)
        end = len(data) if start < 0 else start
        while end > begin and data[end - 1] == 0:  # a 4-byte start code's leading zero
            end -= 1
        if end > begin:
            units.append(data[begin:end])
    return units


def split_adts(data: bytes) -> list[bytes]:
    """Bare AAC frames from ADTS framing; data without an ADTS header is one bare frame."""
    frames: list[bytes] = []
    offset = 0
    while offset + 7 <= len(data) and data[offset] == 0xFF and data[offset + 1] & 0xF0 == 0xF0:
        header = 7 if data[offset + 1] & 0x01 else 9  # protection_absent: no CRC
        length = ((data[offset + 3] & 0x03) << 11) | (data[offset + 4] << 3) | (
            data[offset + 5] >> 5)
        if length < header or offset + length > len(data):
            break
        frames.append(data[offset + header:offset + length])
        offset += length
    if offset == 0 and data:
        return [data]
    return frames


class Packetiser:
    """RTP headers for one track: its own random SSRC, sequence and timestamp origin."""

    payload_type: int
    clock_rate: int

    def __init__(self) -> None:
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self._origin = secrets.randbits(32)

    def timestamp(self, pts: float) -> int:
        return (self._origin + round(pts * self.clock_rate)) & 0xFFFFFFFF

    def _packet(self, payload: bytes, timestamp: int, marker: bool) -> bytes:
        header = _HEADER.pack(0x80, (0x80 if marker else 0) | self.payload_type,
                              self.sequence, timestamp, self.ssrc)
        self.sequence = (self.sequence + 1) & 0xFFFF
        return header + payload

    def packetise(self, data: bytes, pts: float, keyframe: bool) -> list[bytes]:
        raise NotImplementedError


class H264Packetiser(Packetiser):
    """Single NAL unit packets, FU-A for NAL units larger than a packet (packetization-mode 1).

    Parameter sets seen in the stream are remembered and sent in front of any key frame that
    lacks them, so a player can start at every key frame."""

    payload_type = 96
    clock_rate = 90000

    def __init__(self, track: H264Track, max_payload: int = MAX_PAYLOAD) -> None:
        super().__init__()
        self.sps, self.pps = track.sps, track.pps
        self.max_payload = max_payload

    def packetise(self, data: bytes, pts: float, keyframe: bool) -> list[bytes]:
        units = [unit for unit in split_annexb(data) if unit[0] & 0x1F != _NAL_AUD]
        types = {unit[0] & 0x1F for unit in units}
        for unit in units:
            if unit[0] & 0x1F == _NAL_SPS:
                self.sps = unit
            elif unit[0] & 0x1F == _NAL_PPS:
                self.pps = unit
        if (keyframe or _NAL_IDR in types) and _NAL_SPS not in types and self.sps and self.pps:
            units[:0] = [self.sps, self.pps]
        timestamp = self.timestamp(pts)
        packets: list[bytes] = []
        for index, unit in enumerate(units):
            last = index == len(units) - 1
            if len(unit) <= self.max_payload:
                packets.append(self._packet(unit, timestamp, last))
                continue
            indicator = bytes([(unit[0] & 0xE0) | _FU_A])
            kind = unit[0] & 0x1F
            chunk = self.max_payload - 2
            body = memoryview(unit)[1:]
            for offset in range(0, len(body), chunk):
                start, end = offset == 0, offset + chunk >= len(body)
                header = bytes([(0x80 if start else 0) | (0x40 if end else 0) | kind])
                packets.append(self._packet(indicator + header + body[offset:offset + chunk],
                                            timestamp, last and end))
        return packets


class PcmuPacketiser(Packetiser):
    """µ-law samples, one timestamp tick per sample."""

    payload_type = 0
    clock_rate = 8000

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        super().__init__()
        self.max_payload = max_payload

    def packetise(self, data: bytes, pts: float, keyframe: bool) -> list[bytes]:
        start = round(pts * self.clock_rate)
        return [self._packet(data[offset:offset + self.max_payload],
                             (self._origin + start + offset) & 0xFFFFFFFF, False)
                for offset in range(0, len(data), self.max_payload)]


class AacPacketiser(Packetiser):
    """AAC-hbr: one access unit per packet behind a 16-bit AU header (13-bit size, 3-bit
    index); a frame larger than a packet is fragmented, each fragment carrying the whole
    frame's size and only the last one the marker."""

    payload_type = 97

    def __init__(self, track: AacTrack, max_payload: int = MAX_PAYLOAD) -> None:
        super().__init__()
        self.clock_rate = track.sample_rate
        self.max_payload = max_payload

    def packetise(self, data: bytes, pts: float, keyframe: bool) -> list[bytes]:
        packets: list[bytes] = []
        start = round(pts * self.clock_rate)
        chunk = self.max_payload - 4
        for index, frame in enumerate(split_adts(data)):
            if len(frame) >= 1 << 13:
                continue  # cannot be described by a 13-bit size; no real AAC frame is this big
            timestamp = (self._origin + start + index * 1024) & 0xFFFFFFFF
            header = struct.pack("!HH", 16, len(frame) << 3)
            for offset in range(0, len(frame), chunk):
                packets.append(self._packet(header + frame[offset:offset + chunk], timestamp,
                                            offset + chunk >= len(frame)))
        return packets


def packetiser_for(track: Track) -> Packetiser:
    match track:
        case H264Track():
            return H264Packetiser(track)
        case PcmuTrack():
            return PcmuPacketiser()
        case AacTrack():
            return AacPacketiser(track)
    raise TypeError(f"no RTP packetiser for {track!r}")
