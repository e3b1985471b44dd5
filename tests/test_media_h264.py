"""Access units for clients: Annex B with 4-byte start codes, parameter sets before every key
frame, from Annex B (RTSP) and from length-prefixed MP4 samples alike; decoded to prove it."""

from __future__ import annotations

import io
from fractions import Fraction

import av

from bridge.media.h264 import PPS, SPS, START, AccessUnits, nal_type, split_annex_b
from tests.media import FPS, HEIGHT, WIDTH, decode_h264, h264_access_units


def nal_types(unit: bytes) -> list[int]:
    return [nal_type(n) for n in split_annex_b(unit)]


def only_four_byte_start_codes(unit: bytes) -> bool:
    return unit.startswith(START) and unit.count(b"\x00\x00\x01") == unit.count(START)


def test_annex_b_packets_come_out_with_four_byte_start_codes_and_decode():
    units = AccessUnits()
    out = [units.convert(data) for data, _ in h264_access_units()]
    assert all(o is not None for o in out)
    assert all(only_four_byte_start_codes(unit) for unit, _ in out)  # type: ignore[misc]
    assert [key for _, key in out] == [key for _, key in h264_access_units()]  # type: ignore[misc]
    assert len(decode_h264([unit for unit, _ in out])) == len(out)  # type: ignore[misc]


def test_parameter_sets_known_only_from_extradata_are_put_before_each_key_frame():
    source = h264_access_units()
    extradata = b"".join(START + n for n in split_annex_b(source[0][0])
                         if nal_type(n) in (SPS, PPS))
    stripped = [START + START.join(n for n in split_annex_b(data) if nal_type(n) not in (SPS, PPS))
                for data, _ in source]
    units = AccessUnits(extradata)
    out = [units.convert(data) for data in stripped]
    key_frames = [unit for unit, key in out if key]  # type: ignore[misc]
    assert len(key_frames) == 4
    assert all(nal_types(unit)[:2] == [SPS, PPS] for unit in key_frames)
    # a client joining at the second key frame decodes from there
    second = [unit for unit, _ in out][10:]  # type: ignore[misc]
    assert len(decode_h264(second)) == len(second)


def test_length_prefixed_mp4_samples_are_converted():
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("h264", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        for index, (data, key) in enumerate(h264_access_units()):
            packet = av.Packet(data)
            packet.stream = stream
            packet.time_base = Fraction(1, FPS)
            packet.pts = packet.dts = index
            packet.is_keyframe = key
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        video = container.streams.video[0]
        units = AccessUnits(bytes(video.codec_context.extradata or b""))
        out = [units.convert(bytes(p)) for p in container.demux(video) if p.size]
    assert units.length_size == 4
    converted = [o[0] for o in out if o is not None]
    assert len(converted) == len(h264_access_units())
    assert all(only_four_byte_start_codes(unit) for unit in converted)
    assert len(decode_h264(converted)) == len(converted)


def test_a_p_frame_before_any_parameter_set_is_held_back():
    units = AccessUnits()
    p_frame = h264_access_units()[1][0]
    assert units.convert(p_frame) is None
