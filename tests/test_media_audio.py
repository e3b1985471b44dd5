"""Audio conversions, measured: a 1 kHz tone survives AAC, µ-law and the resamplers at its
pitch."""

from __future__ import annotations

import math
from array import array

import av
import pytest

from bridge.media.audio import (
    AacDecoder,
    AacEncoder,
    MulawDecoder,
    MulawEncoder,
    adts_header,
)


def tone(hz: float, seconds: float, rate: int) -> list[av.AudioFrame]:
    """A sine tone as 20 ms s16 mono frames."""
    frames, step = [], rate // 50
    total = int(seconds * rate)
    for start in range(0, total, step):
        samples = array("h", (int(12000 * math.sin(2 * math.pi * hz * (start + i) / rate))
                              for i in range(step)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=step)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate, frame.pts = rate, start
        frames.append(frame)
    return frames


def samples_of(frames: list[av.AudioFrame]) -> list[float]:
    resampler = av.AudioResampler(format="s16", layout="mono")
    out: list[float] = []
    for frame in frames:
        for resampled in resampler.resample(frame):
            out.extend(array("h", bytes(resampled.planes[0])[:resampled.samples * 2]))
    return out


def pitch(samples: list[float], rate: int) -> float:
    """The tone's frequency from its rising zero crossings (skipping codec start-up)."""
    body = samples[len(samples) // 5:]
    crossings = [i for i in range(1, len(body)) if body[i - 1] < 0 <= body[i]]
    return rate * (len(crossings) - 1) / (crossings[-1] - crossings[0])


def test_the_adts_header_describes_an_aac_lc_frame():
    header = adts_header(100)
    assert header[:2] == b"\xff\xf1" and len(header) == 7
    assert ((header[3] & 3) << 11 | header[4] << 3 | header[5] >> 5) == 107
    assert (header[2] >> 2) & 0xF == 8  # 16 kHz


def test_a_tone_survives_aac_at_its_pitch():
    encoder = AacEncoder()
    adts = [f for frame in tone(1000, 1.0, 48000) for f in encoder.encode(frame)]
    adts += encoder.encode(None)
    assert adts and all(f[:2] == b"\xff\xf1" for f in adts)
    decoder = AacDecoder()
    decoded = [frame for f in adts for frame in decoder.decode(f)]
    assert decoded[0].sample_rate == 16000
    assert pitch(samples_of(decoded), 16000) == pytest.approx(1000, abs=20)


def test_aac_talkback_becomes_mulaw_at_its_pitch_and_back():
    encoder = AacEncoder()
    adts = [f for frame in tone(1000, 1.0, 16000) for f in encoder.encode(frame)]
    decoder = AacDecoder()
    mulaw = MulawEncoder().encode(frame for f in adts for frame in decoder.decode(f))
    assert len(mulaw) > 6000  # 8000 bytes a second, less the codec's start-up
    pcm = MulawDecoder().decode(mulaw)
    assert pitch(samples_of(pcm), 8000) == pytest.approx(1000, abs=20)


def test_garbage_is_refused_and_the_decoder_stays_usable():
    decoder = AacDecoder()
    with pytest.raises(ValueError):
        decoder.decode(b"not audio at all")
    encoder = AacEncoder()
    adts = [f for frame in tone(440, 0.5, 16000) for f in encoder.encode(frame)]
    assert [frame for f in adts for frame in decoder.decode(f)]
