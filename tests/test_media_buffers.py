"""Media bytes as eufy clients read them: Node's ``JSON.stringify(buffer)``, exactly.

The reference for "what Node writes" is ``orjson`` of the byte list, which renders integers
the way ``JSON.stringify`` does (decimal, no spaces); the fast encoder must agree for every
size and every byte value, on both of its paths.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.media.buffers import PAIRS_FROM, buffer_fragment, buffer_json, media_event
from tests.media import HEIGHT, WIDTH, decode_h264, h264_access_units


def node_json(data: bytes) -> bytes:
    return orjson.dumps({"type": "Buffer", "data": list(data)})


def random_bytes(size: int, seed: int, top: int) -> bytes:
    """Bytes below ``top``: small tops give runs of one- and two-digit values, the cases
    where tokens are shortest and most often straddle an aligned slot."""
    return np.random.default_rng(seed).integers(0, top, size, dtype=np.uint8).tobytes()


def test_a_buffer_is_rendered_as_node_renders_it() -> None:
    assert buffer_json(b"\x00\x09\x0a\x63\x64\xff") == (
        b'{"type":"Buffer","data":[0,9,10,99,100,255]}')


def test_an_empty_buffer_has_an_empty_list() -> None:
    assert buffer_json(b"") == b'{"type":"Buffer","data":[]}'


@pytest.mark.parametrize("value", range(256))
def test_every_byte_value_alone_and_repeated_on_both_paths(value: int) -> None:
    for size in (1, 2, 3, PAIRS_FROM, PAIRS_FROM + 1):
        data = bytes([value]) * size
        assert buffer_json(data) == node_json(data)


def test_every_pair_of_byte_values_at_every_alignment() -> None:
    pairs = np.arange(65536, dtype="<u2").tobytes()  # every (low, high) pair once
    for shift in range(8):
        data = bytes(range(shift)) + pairs
        assert buffer_json(data) == node_json(data)


@given(st.binary(max_size=300))
def test_small_buffers_match_node(data: bytes) -> None:
    assert buffer_json(data) == node_json(data)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 70_000), seed=st.integers(0, 2**32 - 1),
       top=st.sampled_from([1, 10, 11, 100, 101, 256]))
def test_buffers_of_any_size_match_node(size: int, seed: int, top: int) -> None:
    data = random_bytes(size, seed, top)
    assert buffer_json(data) == node_json(data)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(PAIRS_FROM - 4, PAIRS_FROM + 4), seed=st.integers(0, 2**32 - 1))
def test_sizes_around_the_switch_between_encoders_match_node(size: int, seed: int) -> None:
    data = random_bytes(size, seed, 256)
    assert buffer_json(data) == node_json(data)


def test_bytearray_and_memoryview_encode_like_bytes() -> None:
    data = random_bytes(PAIRS_FROM + 3, 7, 256)
    expected = node_json(data)
    assert buffer_json(bytearray(data)) == expected
    assert buffer_json(memoryview(data)) == expected
    assert buffer_json(memoryview(b"xx" + data)[2:]) == expected


def test_a_fragment_puts_the_buffer_inside_any_message() -> None:
    message = {"type": "result", "result": {"picture": {"data": buffer_fragment(b"\x01\xfe")}}}
    assert orjson.loads(orjson.dumps(message)) == {
        "type": "result", "result": {"picture": {"data": {"type": "Buffer", "data": [1, 254]}}}}


def test_a_media_event_has_the_reference_servers_keys_in_its_order() -> None:
    metadata = {"videoCodec": "H264", "videoFPS": 12, "videoHeight": 720, "videoWidth": 1280}
    text = media_event("livestream video data", "BD0123", b"\x00\x00\x00\x01\x67", metadata)
    assert text == (
        b'{"type":"event","event":{"source":"device","event":"livestream video data",'
        b'"serialNumber":"BD0123","buffer":{"type":"Buffer","data":[0,0,0,1,103]},'
        b'"metadata":{"videoCodec":"H264","videoFPS":12,"videoHeight":720,"videoWidth":1280}}}')


def test_a_client_decodes_the_pictures_carried_by_media_events() -> None:
    """What a client does with the events: parse, rebuild the bytes, feed its decoder."""
    units = h264_access_units()
    metadata = {"videoCodec": "H264", "videoFPS": 20, "videoHeight": HEIGHT,
                "videoWidth": WIDTH}
    received = []
    for data, _keyframe in units:
        event = orjson.loads(media_event("livestream video data", "BD0123", data, metadata))
        assert event["event"]["metadata"] == metadata
        received.append(bytes(event["event"]["buffer"]["data"]))
    assert received == [data for data, _ in units]
    frames = decode_h264(received)
    assert len(frames) == len(units)
    assert (frames[0].width, frames[0].height) == (WIDTH, HEIGHT)
