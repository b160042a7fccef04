"""The voice bank: discovery, clip checks, the on-disk latent cache."""

from __future__ import annotations

import numpy as np
import soundfile

from tests.fakes import FakeEngine
from voxline.voices.bank import VoiceBank
from voxline.voices.clips import is_safe_name, read_clip


def write_clip(path, seconds=2.0, rate=16000, channels=1, level=0.2):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    mono = level * np.sin(2 * np.pi * 180 * t)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    soundfile.write(str(path), data, rate)
    return path


def make_bank(tmp_path, engine=None):
    return VoiceBank(engine or FakeEngine(), tmp_path / "speakers", tmp_path / "cache")


def test_folder_voices_single_and_multi_clip_any_rate(tmp_path):
    write_clip(tmp_path / "speakers" / "anna.wav", rate=44100, channels=2)
    write_clip(tmp_path / "speakers" / "ben" / "one.wav", rate=8000)
    write_clip(tmp_path / "speakers" / "ben" / "two.flac", rate=22050)
    bank = make_bank(tmp_path)
    report = bank.load()
    assert sorted(report.computed) == ["anna", "ben"]
    assert bank.names() == ["alice", "anna", "ben", "bob"]
    assert bank.default == "anna"  # first folder voice when none is named "default"


def test_unreadable_short_and_silent_clips_are_skipped_with_reasons(tmp_path):
    speakers = tmp_path / "speakers"
    write_clip(speakers / "good.wav")
    speakers.joinpath("broken.wav").write_bytes(b"RIFF this is not audio")
    write_clip(speakers / "short.wav", seconds=0.3)
    write_clip(speakers / "quiet.wav", level=0.0)
    bank = make_bank(tmp_path)
    report = bank.load()
    assert "good" in bank.names()
    assert set(report.failed) == {"broken", "short", "quiet"}
    assert "not readable" in report.failed["broken"]
    assert "shorter" in report.failed["short"]
    assert "silent" in report.failed["quiet"]


def test_latents_are_reused_from_disk_after_restart(tmp_path):
    for i in range(3):
        write_clip(tmp_path / "speakers" / f"v{i}.wav", level=0.1 + i / 20)
    first = FakeEngine()
    make_bank(tmp_path, first).load()
    assert first.conditioned == 3
    second = FakeEngine()
    bank = make_bank(tmp_path, second)
    report = bank.load()
    assert second.conditioned == 0  # no recomputation
    assert sorted(report.cached) == ["v0", "v1", "v2"]
    fresh = FakeEngine().compute_conditioning([read_clip(tmp_path / "speakers" / "v1.wav")])
    np.testing.assert_array_equal(bank.get("v1")["offset"], fresh["offset"])


def test_changed_clip_or_model_invalidates_the_entry(tmp_path):
    clip = write_clip(tmp_path / "speakers" / "v.wav")
    make_bank(tmp_path).load()
    write_clip(clip, level=0.05)
    engine = FakeEngine()
    make_bank(tmp_path, engine).load()
    assert engine.conditioned == 1

    class OtherModel(FakeEngine):
        @property
        def model_id(self):
            return "other-weights"

    other = OtherModel()
    make_bank(tmp_path, other).load()
    assert other.conditioned == 1


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    write_clip(tmp_path / "speakers" / "v.wav")
    make_bank(tmp_path).load()
    entries = list((tmp_path / "cache" / "latents").glob("*.npz"))
    assert len(entries) == 1
    entries[0].write_bytes(b"garbage")
    engine = FakeEngine()
    bank = make_bank(tmp_path, engine)
    assert bank.load().computed == ["v"]
    assert engine.conditioned == 1
    assert np.load(entries[0], allow_pickle=False)["offset"].shape == (1,)


def test_failed_cache_write_only_warns(tmp_path, caplog):
    write_clip(tmp_path / "speakers" / "v.wav")
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    bank = make_bank(tmp_path)
    assert bank.load().computed == ["v"]
    assert "v" in bank.names()
    assert "could not write voice cache" in caplog.text


def test_pickled_cache_entry_is_not_executed(tmp_path):
    write_clip(tmp_path / "speakers" / "v.wav")
    make_bank(tmp_path).load()
    entry = next((tmp_path / "cache" / "latents").glob("*.npz"))
    marker = tmp_path / "pwned"
    # An object array needs pickle to load; allow_pickle=False refuses it.
    payload = np.array([_Boom(str(marker))], dtype=object)
    with entry.open("wb") as fh:
        np.savez(fh, offset=payload)
    engine = FakeEngine()
    assert make_bank(tmp_path, engine).load().computed == ["v"]
    assert not marker.exists()


class _Boom:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_engine_that_cannot_clone_reports_folder_voices(tmp_path):
    write_clip(tmp_path / "speakers" / "v.wav")

    class NoClone(FakeEngine):
        can_clone = False

    bank = make_bank(tmp_path, NoClone())
    report = bank.load()
    assert "cannot clone" in report.skipped["v"] and "v" not in report.failed
    assert bank.names() == ["alice", "bob"]


def test_safe_names():
    assert is_safe_name("anna") and is_safe_name("de_DE-thorsten.v2")
    for bad in ("", "../x", ".hidden", "a/b", "a" * 65, "x\x00y", "a..b"):
        assert not is_safe_name(bad)
