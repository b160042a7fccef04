"""Format resolution, content types, byte layouts and the level policy."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import soxr
from audio_helpers import run, tone

from voxline.audio import (
    SAMPLE_RATES,
    AudioFormatError,
    AudioPipeline,
    LevelPolicy,
    encode_whole,
    float_to_int16,
    parse_level_policy,
    resolve_output,
)
from voxline.audio.levels import LIMIT_KNEE


@pytest.mark.parametrize("fmt", ("l16", "pcm", "wav", "mp3", "flac"))
@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_linear_formats_take_every_rate(fmt: str, rate: int) -> None:
    spec = resolve_output(fmt, rate, 24000)
    assert (spec.format, spec.sample_rate, spec.streamable) == (fmt, rate, True)


def test_content_types_state_what_the_bytes_are() -> None:
    def ctype(fmt: str, rate: int | None = None) -> str:
        return resolve_output(fmt, rate, 24000).content_type

    assert ctype("l16", 16000) == "audio/L16; rate=16000; channels=1"
    assert ctype("pcm") == "audio/pcm; rate=24000; channels=1"
    assert ctype("wav") == "audio/wav"
    assert ctype("ulaw") == "audio/PCMU; rate=8000; channels=1"
    assert ctype("alaw") == "audio/PCMA; rate=8000; channels=1"
    assert (ctype("mp3"), ctype("opus"), ctype("flac")) == (
        "audio/mpeg",
        "audio/ogg; codecs=opus",
        "audio/flac",
    )


def test_defaults() -> None:
    assert resolve_output(None, None, 24000).format == "l16"
    assert resolve_output(None, None, 22050, default_format="wav").sample_rate == 22050
    assert resolve_output("ULaw", None, 24000).sample_rate == 8000
    assert resolve_output("opus", None, 22050).sample_rate == 48000
    assert resolve_output("pcm", None, 11025).sample_rate == 16000  # nearest allowed above


@pytest.mark.parametrize(
    ("fmt", "rate", "message"),
    [
        ("ulaw", 44100, "µ-law is defined at 8000 Hz only"),
        ("alaw", 16000, "A-law is defined at 8000 Hz only"),
        ("opus", 24000, "Ogg Opus always decodes at 48000 Hz"),
        ("pcm", 12345, "allowed: 8000, 16000, 22050, 24000, 44100, 48000"),
        ("wmv", None, "unknown format 'wmv'"),
        ("pcm", "8000", "must be an integer"),
        ("pcm", True, "must be an integer"),
    ],
)
def test_unsupported_requests_are_client_errors(fmt: str, rate: object, message: str) -> None:
    with pytest.raises(AudioFormatError, match=message) as info:
        resolve_output(fmt, rate, 24000)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_l16_is_big_endian_and_pcm_little_endian() -> None:
    x = tone(440, seconds=0.1)
    want = float_to_int16(x)
    l16, pcm = run("l16", 24000, x, 17), run("pcm", 24000, x, 17)
    np.testing.assert_array_equal(np.frombuffer(l16, ">i2"), want)
    assert not np.array_equal(np.frombuffer(l16, "<i2"), want)
    np.testing.assert_array_equal(np.frombuffer(pcm, "<i2"), want)


def test_streaming_wav_has_unknown_sizes_and_parses() -> None:
    x = tone(440, seconds=0.25)
    data = run("wav", 16000, x, 509)
    assert data[4:8] == b"\xff\xff\xff\xff" and data[40:44] == b"\xff\xff\xff\xff"
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        frames = w.readframes(1 << 20)
    assert len(frames) == 2 * 4000
    assert frames == data[44:]


def test_whole_wav_has_exact_sizes() -> None:
    x = tone(440, seconds=0.25)
    data = encode_whole(resolve_output("wav", 8000, 24000), 24000, [x[:999], x[999:]])
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getframerate(), w.getnframes()) == (8000, 2000)
    assert int.from_bytes(data[4:8], "little") == len(data) - 8


def test_float_to_int16_scales_and_clips_without_wrapping() -> None:
    x = np.array([0.0, 1.0, -1.0, 0.5, 1.5, -3.0, 1e9], np.float32)
    assert float_to_int16(x).tolist() == [0, 32767, -32767, 16384, 32767, -32768, 32767]


def test_limiter_is_transparent_below_the_knee_and_bounded_above() -> None:
    limit = LevelPolicy("limit")
    quiet = np.linspace(-LIMIT_KNEE, LIMIT_KNEE, 1001, dtype=np.float32)
    np.testing.assert_array_equal(limit.apply(quiet), quiet)
    loud = np.linspace(LIMIT_KNEE, 4.0, 1001, dtype=np.float32)
    out = limit.apply(np.concatenate([loud, -loud]))
    assert np.abs(out).max() <= 1.0
    assert np.all(np.diff(out[:1001]) >= 0)  # still monotonic: no fold-over
    assert limit.apply(np.zeros(0, np.float32)).size == 0


def test_gain_and_none_policies() -> None:
    x = np.full(8, 0.25, np.float32)
    np.testing.assert_allclose(LevelPolicy("gain", 6.0206).apply(x), 0.5, rtol=1e-4)
    assert LevelPolicy("none").apply(x) is x


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("none", LevelPolicy("none")),
        ("gain:-3", LevelPolicy("gain", -3.0)),
        ("limit", LevelPolicy("limit")),
        (" Limit:+2dB ", LevelPolicy("limit", 2.0)),
    ],
)
def test_parse_level_policy(text: str, policy: LevelPolicy) -> None:
    assert parse_level_policy(text) == policy


@pytest.mark.parametrize("text", ("loud", "gain", "gain:x", "limit:99", "none:3"))
def test_parse_level_policy_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_level_policy(text)


def test_pipeline_rejects_misuse() -> None:
    pipe = AudioPipeline(resolve_output("pcm", None, 24000), 24000)
    with pytest.raises(TypeError, match="float"):
        pipe.feed(np.zeros(4, np.int16))
    with pytest.raises(ValueError, match="mono"):
        pipe.feed(np.zeros((4, 2), np.float32))
    assert pipe.feed(np.zeros((4, 1), np.float32)) == bytes(8)
    pipe.finish()
    with pytest.raises(RuntimeError):
        pipe.feed(np.zeros(4, np.float32))
    pipe.close()
    pipe.close()


def test_in_process_formats_have_no_encoder_process() -> None:
    with AudioPipeline(resolve_output("ulaw", None, 24000), 24000) as pipe:
        assert pipe.process_id is None


@pytest.mark.parametrize(
    "policy", (LevelPolicy("limit"), LevelPolicy("none"), LevelPolicy("gain", 6))
)
def test_overloaded_input_never_wraps(policy: LevelPolicy) -> None:
    x = tone(440, seconds=0.2, amp=3.0)  # peaks at +9.5 dBFS
    y = np.frombuffer(run("pcm", 8000, x, 509, level=policy), "<i2").astype(np.int32)
    ref = soxr.resample(x, 24000, 8000, quality="HQ")
    loud = np.abs(ref) > 0.95
    assert loud.any()
    assert np.all(np.sign(y[loud]) == np.sign(ref[loud]))  # a wrapped peak flips sign
    assert np.all(np.abs(y[loud]) >= 29000)
