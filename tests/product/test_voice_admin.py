"""Voice management: the upload validation table, voices usable and removable without a restart,
no temporary files left behind."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from tests.fakes import FakeEngine
from tests.product.conftest import ADMIN, LatentEngine, speech_like, write_clip
from voxline.engines.base import EngineError


def upload(client, name, *files, headers=ADMIN):
    """POST /v1/voices with (filename, bytes) files (under 500 kB in all: the test client
    spools larger bodies to a temporary file it does not close)."""
    data = {"name": name} if name is not None else {}
    for i, (filename, content) in enumerate(files):
        data[f"clip{i}"] = (io.BytesIO(content), filename)
    response = client.post("/v1/voices", data=data, headers=headers,
                           content_type="multipart/form-data")
    return response


def clip_bytes(tmp_path, samples, fmt="wav", rate=22050):
    return write_clip(tmp_path / f"clip.{fmt}", samples, rate, fmt).read_bytes()


def leftovers(tmp_path):
    """Temporary files or folders an upload could leave behind."""
    speakers = tmp_path / "speakers"
    hidden = [p.name for p in speakers.iterdir() if p.name.startswith(".")] \
        if speakers.exists() else []
    scratch = tmp_path / "cache" / "uploads"
    return hidden + ([p.name for p in scratch.iterdir()] if scratch.exists() else [])


def _clipped(seconds=6.0):
    x = speech_like(seconds) * 6  # far past full scale
    return np.clip(x, -1, 1)


# (description, name, files(tmp_path) -> [(filename, bytes)], settings, status, code)
CASES = [
    ("not audio", "v", lambda p: [("notes.wav", b"RIFF not really a wave file" * 50)], {},
     400, "not_audio"),
    ("an image", "v", lambda p: [("x.png", b"\x89PNG\r\n\x1a\n" + bytes(500))], {},
     400, "not_audio"),
    ("too short", "v", lambda p: [("a.wav", clip_bytes(p, speech_like(2.0)))], {},
     400, "too_short"),
    ("short clips add up", "v", lambda p: [("a.wav", clip_bytes(p, speech_like(2.5))),
                                           ("b.wav", clip_bytes(p, speech_like(2.5)))], {},
     201, None),
    ("too long", "v", lambda p: [("a.wav", clip_bytes(p, speech_like(12, 8000), rate=8000))],
     {"upload_max_seconds": 10}, 400, "too_long"),
    ("too large", "v", lambda p: [("a.wav", clip_bytes(p, speech_like(6)))],
     {"upload_max_mb": 0.1}, 413, "too_large"),
    ("silent", "v", lambda p: [("a.wav", clip_bytes(p, np.zeros(22050 * 5, np.float32)))], {},
     400, "silent"),
    ("near silent", "v", lambda p: [("a.wav", clip_bytes(p, speech_like(5, level=1e-5)))], {},
     400, "silent"),
    ("no clip", "v", lambda p: [], {}, 400, "missing_clip"),
    ("path traversal", "../x", lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     400, "bad_name"),
    ("slash", "a/b", lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     400, "bad_name"),
    ("empty name", "", lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     400, "bad_name"),
    ("missing name", None, lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     400, "bad_name"),
    ("name too long", "a" * 65, lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     400, "bad_name"),
    ("control character", "bad\x01name", lambda p: [("a.wav", clip_bytes(p, speech_like(5)))],
     {}, 400, "bad_name"),
    ("hidden name", ".hidden", lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     400, "bad_name"),
    ("built-in name", "alice", lambda p: [("a.wav", clip_bytes(p, speech_like(5)))], {},
     409, "voice_exists"),
    ("too many clips", "v", lambda p: [("a.wav", clip_bytes(p, speech_like(1, 8000), rate=8000))]
     * 11, {},
     400, "too_many_clips"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_upload_validation(admin_app, tmp_path, case):
    _, name, files, settings, status, code = case
    engine = FakeEngine()
    client = admin_app(engine, **settings).test_client()
    response = upload(client, name, *files(tmp_path))
    assert response.status_code == status, response.get_data(as_text=True)
    if code is not None:
        assert response.json["error"] == code
        assert response.json["message"]
        assert engine.conditioned == 0
        assert "v" not in client.get("/speakers").json["speakers"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "flac", "m4a"])
def test_every_upload_format_is_decoded(admin_app, tmp_path, fmt):
    client = admin_app().test_client()
    rate = 48000 if fmt == "ogg" else 16000 if fmt == "wav" else 44100
    response = upload(client, "multi", (f"voice.{fmt}", clip_bytes(tmp_path, speech_like(6, rate),
                                                                   fmt, rate)))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert abs(response.json["clips"][0]["seconds"] - 6.0) < 0.1
    stored = sorted((tmp_path / "speakers" / "multi").iterdir())
    assert [p.name for p in stored] == ["clip01.wav"]
    import soundfile

    info = soundfile.info(str(stored[0]))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")


def test_several_clips_under_one_field_name(admin_app, tmp_path):
    engine = FakeEngine()
    client = admin_app(engine).test_client()
    clips = [(io.BytesIO(clip_bytes(tmp_path, speech_like(2.5, level=lv))), f"{i}.wav")
             for i, lv in enumerate((0.2, 0.3))]
    response = client.post("/v1/voices", data={"name": "duo", "files": clips}, headers=ADMIN,
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    assert [c["file"] for c in response.json["clips"]] == ["0.wav", "1.wav"]
    assert sorted(p.name for p in (tmp_path / "speakers" / "duo").iterdir()) == [
        "clip01.wav", "clip02.wav"]


def test_heavily_clipped_clip_is_accepted_with_a_warning(admin_app, tmp_path):
    client = admin_app().test_client()
    response = upload(client, "loud", ("loud.wav", clip_bytes(tmp_path, _clipped())))
    assert response.status_code == 201
    assert len(response.json["warnings"]) == 1
    assert "clipped" in response.json["warnings"][0]


def test_stereo_clip_is_mixed_down_resampled_and_normalised(admin_app, tmp_path):
    import soundfile

    from voxline.voices.upload import active_frames, frame_levels_db

    mono = speech_like(5, 16000, level=0.05)  # quiet: about -40 dBFS RMS
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([mono, mono], axis=1), 16000)
    client = admin_app().test_client()
    assert upload(client, "st", ("stereo.wav", path.read_bytes())).status_code == 201
    stored, rate = soundfile.read(str(tmp_path / "speakers" / "st" / "clip01.wav"),
                                  dtype="float32")
    assert rate == 22050 and stored.ndim == 1 and abs(len(stored) / rate - 5) < 0.01
    levels = frame_levels_db(stored)
    loudness = 10 * np.log10(np.mean(10 ** (levels[active_frames(levels)] / 10)))
    assert abs(loudness - -20) < 1.0
    assert np.max(np.abs(stored)) <= 10 ** (-1 / 20) + 1e-3


def test_voice_is_usable_at_once_and_gone_after_delete(admin_app, tmp_path):
    engine = LatentEngine()
    app = admin_app(engine)
    client = app.test_client()
    response = upload(client, "anna", ("one.wav", clip_bytes(tmp_path, speech_like(5))),
                      ("two.flac", clip_bytes(tmp_path, speech_like(4, level=0.2), "flac")))
    assert response.status_code == 201, response.json
    assert engine.conditioned == 1
    assert "anna" in client.get("/speakers").json["speakers"]
    spoken = client.post("/tts_stream", json={"text": "Hi.", "speaker": "anna", "format": "pcm"})
    assert spoken.status_code == 200
    assert spoken.headers["X-Voxline-Voice"] == "anna"
    alice = client.post("/tts_stream", json={"text": "Hi.", "speaker": "alice", "format": "pcm"})
    assert spoken.data != alice.data  # its own latents, not a built-in voice's
    shown = client.get("/v1/voices/anna", headers=ADMIN).json
    assert shown["kind"] == "folder" and shown["clips"] == ["clip01.wav", "clip02.wav"]
    listed = client.get("/v1/voices", headers=ADMIN).json["voices"]
    assert {v["name"]: v["kind"] for v in listed} == {
        "alice": "builtin", "anna": "folder", "bob": "builtin"}

    assert client.delete("/v1/voices/anna", headers=ADMIN).status_code == 200
    gone = client.post("/tts_stream", json={"text": "Hi.", "speaker": "anna"})
    assert gone.status_code == 404 and gone.json["error"] == "unknown_speaker"
    assert client.get("/v1/voices/anna", headers=ADMIN).status_code == 404
    assert client.delete("/v1/voices/anna", headers=ADMIN).status_code == 404
    assert not (tmp_path / "speakers" / "anna").exists()
    assert list((tmp_path / "cache" / "latents").iterdir()) == []
    assert leftovers(tmp_path) == []


def test_uploaded_voice_survives_a_restart_from_the_latent_cache(admin_app, tmp_path):
    first = admin_app(LatentEngine())
    clip = ("a.wav", clip_bytes(tmp_path, speech_like(5)))
    assert upload(first.test_client(), "anna", clip).status_code == 201
    engine = LatentEngine()
    bank = admin_app(engine).services.voices  # a restart over the same folders
    assert "anna" in bank.report.cached and engine.conditioned == 0
    assert bank.digest("anna") == first.services.voices.digest("anna")


def test_builtin_and_default_voices_cannot_be_deleted(admin_app, tmp_path):
    write_clip(tmp_path / "speakers" / "default.wav", speech_like(4))
    client = admin_app().test_client()
    assert client.delete("/v1/voices/alice", headers=ADMIN).json["error"] == "builtin_voice"
    refused = client.delete("/v1/voices/default", headers=ADMIN)
    assert refused.status_code == 409 and refused.json["error"] == "default_voice"
    assert client.delete("/v1/voices/..%2Fx", headers=ADMIN).status_code == 404


def test_duplicate_name_is_a_conflict(admin_app, tmp_path):
    client = admin_app().test_client()
    clip = ("a.wav", clip_bytes(tmp_path, speech_like(5)))
    assert upload(client, "anna", clip).status_code == 201
    again = upload(client, "anna", clip)
    assert again.status_code == 409 and again.json["error"] == "voice_exists"


def test_failure_while_cloning_leaves_nothing_behind(admin_app, tmp_path):
    class Failing(FakeEngine):
        def compute_conditioning(self, clips):
            raise EngineError("out of memory")

    client = admin_app(Failing()).test_client()
    response = upload(client, "anna", ("a.wav", clip_bytes(tmp_path, speech_like(5))))
    assert response.status_code == 500
    assert "out of memory" not in response.get_data(as_text=True)  # internals stay in the log
    assert not (tmp_path / "speakers" / "anna").exists()
    assert leftovers(tmp_path) == []
    assert "anna" not in client.get("/speakers").json["speakers"]


def test_bad_second_clip_leaves_nothing_behind(admin_app, tmp_path):
    client = admin_app().test_client()
    response = upload(client, "anna", ("good.wav", clip_bytes(tmp_path, speech_like(5))),
                      ("bad.mp3", b"ID3 but not really"))
    assert response.status_code == 400 and response.json["error"] == "not_audio"
    assert "bad.mp3" in response.json["message"]
    assert leftovers(tmp_path) == [] and not (tmp_path / "speakers" / "anna").exists()


def test_engine_that_cannot_clone_refuses_uploads(admin_app, tmp_path):
    class NoClone(FakeEngine):
        can_clone = False

    client = admin_app(NoClone()).test_client()
    response = upload(client, "anna", ("a.wav", clip_bytes(tmp_path, speech_like(5))))
    assert response.status_code == 400 and response.json["error"] == "cannot_clone"


def test_stream_already_using_a_voice_finishes_after_delete(admin_app, tmp_path):
    from tests.server.test_api import call_wsgi

    engine = LatentEngine()
    app = admin_app(engine)
    client = app.test_client()
    assert upload(client, "anna", ("a.wav", clip_bytes(tmp_path, speech_like(5)))).status_code \
        == 201
    engine.gate = threading.Event()
    _, body = call_wsgi(app, method="POST", path="/tts_stream",
                        json={"text": "Hi.", "speaker": "anna", "format": "pcm"})
    chunks = iter(body)
    engine.gate.set()
    first = next(chunks)
    engine.gate.clear()
    assert client.delete("/v1/voices/anna", headers=ADMIN).status_code == 200
    engine.gate.set()
    rest = b"".join(chunks)
    body.close()
    assert len(first + rest) == 2 * engine.n_chunks * engine.chunk_len
