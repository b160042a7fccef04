"""The real coqui-tts code path on a tiny random-weight XTTS v2 built by the test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from voxline.engines.base import Clip, EngineError, SynthesisParams, chunk_parts
from voxline.engines.xtts_engine import XttsEngine, choose_deepspeed, choose_device
from voxline.voices.bank import VoiceBank

pytestmark = pytest.mark.slow
FORCED = SynthesisParams(top_k=1, seed=7, min_new_tokens=30, max_new_tokens=30,
                         stream_chunk_size=20)

def audio(chunks) -> list[np.ndarray]:
    """The samples of engine chunks (a sentence's last chunk carries its words too)."""
    return [chunk_parts(c)[0] for c in chunks]


@pytest.fixture(scope="module")
def engine(tiny_xtts):
    return XttsEngine(tiny_xtts, device="cpu", deepspeed="auto")


def sine_clip(seconds=3.0, rate=16000, freq=150.0):
    t = np.arange(int(seconds * rate)) / rate
    return Clip((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, "sine")


def test_loads_through_load_checkpoint_with_v2_languages(engine):
    assert engine.sample_rate == 24000
    assert "en" in engine.languages and "zh-cn" in engine.languages and len(engine.languages) == 17
    assert engine.deepspeed is False  # CPU: never DeepSpeed
    assert engine.model_id.startswith("xtts:")
    assert engine.sentence_limit("en") == 250


def test_studio_speakers_are_voices(engine):
    voices = engine.builtin_voices()
    assert list(voices) == ["Studio Sine"]
    assert voices["Studio Sine"]["speaker_embedding"].shape == (1, 512, 1)


def test_conditioning_shapes_and_rate_independence(engine):
    cond = engine.compute_conditioning([sine_clip()])
    assert cond["gpt_cond_latent"].shape == (1, 32, 64)
    assert cond["speaker_embedding"].shape == (1, 512, 1)
    assert cond["gpt_cond_latent"].dtype == np.float32


def test_forced_length_stream_is_deterministic_and_float32(engine):
    voice = engine.compute_conditioning([sine_clip()])
    first = audio(engine.stream("Hello world, this is a test.", voice, "en", FORCED))
    second = audio(engine.stream("Hello world, this is a test.", voice, "en", FORCED))
    assert len(first) == 2  # 30 tokens at stream_chunk_size 20
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in first)
    assert all(np.isfinite(c).all() for c in first)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # One GPT token is 1024 samples at 22.05 kHz; 30 tokens decode to about 1.39 s at 24 kHz.
    total = sum(len(c) for c in first)
    assert abs(total - 30 * 1024 * 24000 / 22050) < 1024


@pytest.mark.parametrize("top_k", [1, 50])
def test_stepping_loop_equals_coqui_inference_stream(engine, top_k):
    import torch

    voice = engine.compute_conditioning([sine_clip()])
    params = SynthesisParams(top_k=top_k, seed=3, min_new_tokens=30, max_new_tokens=30,
                             stream_chunk_size=8)
    ours = audio(engine.stream("Exactly the same audio.", voice, "en", params))
    torch.manual_seed(3)
    theirs = [c.numpy() for c in engine.model.inference_stream(
        "Exactly the same audio.", "en",
        torch.from_numpy(voice["gpt_cond_latent"]), torch.from_numpy(voice["speaker_embedding"]),
        stream_chunk_size=8, temperature=params.temperature, top_k=top_k, top_p=params.top_p,
        repetition_penalty=params.repetition_penalty, length_penalty=params.length_penalty,
        min_new_tokens=30, max_new_tokens=30)]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        # Same tokens from the same seed; the windowed vocoder differs by float rounding.
        assert len(a) == len(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_closing_the_stream_mid_way_leaves_the_model_usable(engine):
    voice = engine.builtin_voices()["Studio Sine"]
    params = SynthesisParams(top_k=1, seed=1, min_new_tokens=30, max_new_tokens=30,
                             stream_chunk_size=5)
    stream = engine.stream("Cancel me please.", voice, "en", params)
    next(stream)
    stream.close()
    again = audio(engine.stream("Cancel me please.", voice, "en", params))
    # six full chunks of 5 tokens, then the end of generation flushes the crossfade tail
    assert len(again) == 7


def test_voice_bank_caches_xtts_latents(engine, tmp_path):
    speakers = tmp_path / "speakers"
    (speakers / "multi").mkdir(parents=True)
    clip = sine_clip(freq=120.0)
    soundfile.write(str(speakers / "solo.wav"), clip.samples, clip.sample_rate)
    for i, rate in enumerate((8000, 44100)):
        c = sine_clip(rate=rate, freq=200.0 + 50 * i)
        soundfile.write(str(speakers / "multi" / f"{i}.wav"), c.samples, rate)
    first = VoiceBank(engine, speakers, tmp_path / "cache")
    assert sorted(first.load().computed) == ["multi", "solo"]
    second = VoiceBank(engine, speakers, tmp_path / "cache")
    report = second.load()
    assert sorted(report.cached) == ["multi", "solo"] and report.computed == []
    for name in ("multi", "solo"):
        for key in ("gpt_cond_latent", "speaker_embedding"):
            np.testing.assert_array_equal(first.get(name)[key], second.get(name)[key])


def test_device_and_deepspeed_decisions():
    assert choose_device("auto", cuda_available=False) == "cpu"
    assert choose_device("auto", cuda_available=True) == "cuda"
    with pytest.raises(EngineError):
        choose_device("cuda", cuda_available=False)
    assert choose_deepspeed("auto", "cuda", importable=True) is True
    assert choose_deepspeed("auto", "cuda", importable=False) is False
    assert choose_deepspeed("auto", "cpu", importable=True) is False
    assert choose_deepspeed("off", "cuda", importable=True) is False
    with pytest.raises(EngineError, match="needs CUDA"):
        choose_deepspeed("on", "cpu", importable=True)
    with pytest.raises(EngineError, match="deepspeed package"):
        choose_deepspeed("on", "cuda", importable=False)


RESOLVE = ("from voxline.engines.xtts_weights import resolve_checkpoint; "
           "print(resolve_checkpoint(None))")


def fill_hf_cache(hf_home, checkpoint):
    """Lay out an XTTS v2 snapshot the way a finished coqui-tts download leaves it."""
    repo = hf_home / "hub" / "models--tts-hub--XTTS-v2"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "vocab.json", "model.pth"):
        os.link(checkpoint / name, snapshot / name) if hasattr(os, "link") else shutil.copy(
            checkpoint / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    return snapshot


def run_resolve(tmp_path, **env):
    full = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
            "TTS_HOME": str(tmp_path / "tts"), "XDG_DATA_HOME": str(tmp_path / "data"), **env}
    full.pop("COQUI_TOS_AGREED", None) if "COQUI_TOS_AGREED" not in env else None
    return subprocess.run([sys.executable, "-c", RESOLVE], env=full, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_download_mode_uses_coqui_tts_with_a_prefilled_offline_cache(tiny_xtts, tmp_path):
    snapshot = fill_hf_cache(tmp_path / "hf", tiny_xtts)
    done = run_resolve(tmp_path, COQUI_TOS_AGREED="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(snapshot)
    engine = XttsEngine(snapshot, device="cpu")
    assert engine.model_id == XttsEngine(tiny_xtts, device="cpu").model_id


def test_cached_snapshot_loads_without_the_licence_prompt(tiny_xtts, tmp_path):
    snapshot = fill_hf_cache(tmp_path / "hf", tiny_xtts)
    done = run_resolve(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(snapshot)


def test_no_weights_and_no_licence_fails_with_a_message_not_a_prompt(tmp_path):
    done = run_resolve(tmp_path)
    assert done.returncode != 0
    assert "COQUI_TOS_AGREED=1" in done.stderr
    assert "EOFError" not in done.stderr


def test_folder_missing_files_is_reported(tmp_path):
    from voxline.engines.xtts_weights import check_folder

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EngineError, match="lacks model.pth, vocab.json"):
        check_folder(tmp_path)
