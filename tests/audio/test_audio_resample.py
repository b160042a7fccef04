"""Streamed resampling equals one-shot soxr, keeps tone levels and blocks aliasing."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from audio_helpers import FLAT, db, fit_amplitude, rms, run, tone

from voxline.audio import encode_whole, float_to_int16, g711, resolve_output
from voxline.audio.resample import Resampler

CHUNKS = (1, 17, 509, 2048, 44100)
LENGTHS = (0, 1, 31999, 166151)
RATE_PAIRS = ((24000, 8000), (22050, 48000))


def _noise(n: int, seed: int = 3) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.2).astype(np.float32)


def _streamed(res: Resampler, x: np.ndarray, chunk: int) -> np.ndarray:
    parts = [res.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate([*parts, res.flush()])


@pytest.mark.parametrize("rates", RATE_PAIRS, ids=lambda r: f"{r[0]}to{r[1]}")
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("chunk", CHUNKS)
def test_streamed_equals_one_shot(rates: tuple[int, int], length: int, chunk: int) -> None:
    src, dst = rates
    x = _noise(length)
    got = _streamed(Resampler(src, dst, "HQ"), x, chunk)
    want = soxr.resample(x, src, dst, quality="HQ")
    assert abs(len(got) - length * dst / src) <= 1
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("chunk", (1, 17, 509, 2048, 44100))
def test_pipeline_stream_equals_whole_file(chunk: int) -> None:
    x = _noise(31999)
    spec = resolve_output("pcm", 8000, 24000)
    whole = encode_whole(spec, 24000, [x], level=FLAT)
    assert run("pcm", 8000, x, chunk) == whole
    expected = float_to_int16(soxr.resample(x, 24000, 8000, quality="HQ"))
    np.testing.assert_array_equal(np.frombuffer(whole, "<i2"), expected)


def test_same_rate_passes_samples_through() -> None:
    x = _noise(1000)
    np.testing.assert_array_equal(np.frombuffer(run("pcm", 24000, x, 7), "<i2"), float_to_int16(x))


def test_low_quality_is_refused() -> None:
    with pytest.raises(ValueError, match="HQ or VHQ"):
        Resampler(24000, 8000, "QQ")  # type: ignore[arg-type]


def _decode(fmt: str, data: bytes) -> np.ndarray:
    pcm = np.frombuffer(data, "<i2") if fmt == "pcm" else g711.ulaw_decode(data)
    return pcm.astype(np.float64) / 32767


@pytest.mark.parametrize("quality", ("HQ", "VHQ"))
@pytest.mark.parametrize("fmt", ("pcm", "ulaw"))
def test_1khz_keeps_its_level(fmt: str, quality: str) -> None:
    y = _decode(fmt, run(fmt, 8000, tone(1000), 509, quality=quality))
    amp, residual = fit_amplitude(y[400:-400], 1000, 8000)
    assert abs(db(amp / 0.5)) <= 0.5
    # µ-law's noise floor: quantisation error ~34 dB below this tone (G.711's SQNR); int16's ~-98.
    assert db(rms(residual) / (amp / np.sqrt(2))) <= (-30 if fmt == "ulaw" else -80)


@pytest.mark.parametrize("quality", ("HQ", "VHQ"))
@pytest.mark.parametrize("fmt", ("pcm", "ulaw"))
@pytest.mark.parametrize("freq", (4500, 5000, 6000))
def test_tones_above_4khz_do_not_alias(fmt: str, quality: str, freq: int) -> None:
    x = tone(freq)
    y = _decode(fmt, run(fmt, 8000, x, 509, quality=quality))
    # Measured over the whole output, fades included. µ-law's smallest step (8/32767, -72 dBFS)
    # would set a floor near -63 dB here; the filtered signal stays below half of it.
    assert db(rms(y) / rms(x)) <= -80


@pytest.mark.parametrize("chunk", (1, 7, 331, 1021))
def test_no_discontinuity_at_chunk_boundaries(chunk: int) -> None:
    freq, amp = 440, 0.5
    y = np.frombuffer(run("pcm", 8000, tone(freq, amp=amp), chunk), "<i2").astype(np.float64)
    # A sine's largest sample-to-sample step is 2·sin(π f / fs)·A; allow 2 LSB of rounding.
    max_step = 2 * np.sin(np.pi * freq / 8000) * amp * 32767 + 2
    assert np.abs(np.diff(y)).max() <= max_step
