"""The phrase cache: hits are byte-identical and skip the engine, identical requests in flight
synthesise once, only complete renders are kept, the disk use is bounded (LRU)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.fakes import FakeEngine
from tests.product.conftest import ADMIN, speech_like, write_clip
from tests.server.test_api import call_wsgi
from tests.waiting import wait_until
from voxline.phrase_cache import PhraseCache, phrase_key

REQUEST = {"text": "Thank you for calling.", "format": "pcm"}


@pytest.fixture
def app(make_app, engine):
    return make_app(engine)


@pytest.fixture
def lookups(app, monkeypatch) -> list[str]:
    """The kind of every phrase-cache lookup the app makes ("lead", "follow" or "hit"), so a
    test waits for requests to reach the cache instead of sleeping."""
    phrases, kinds = app.services.phrases, []
    lookup = phrases.lookup

    def counted(key):
        found = lookup(key)
        kinds.append(found.kind)
        return found

    monkeypatch.setattr(phrases, "lookup", counted)
    return kinds


def test_second_identical_request_is_a_byte_identical_hit(app, engine):
    client = app.test_client()
    first = client.post("/tts_stream", json=REQUEST)
    assert first.headers["X-Voxline-Cache"] == "miss" and first.data
    second = client.post("/tts_stream", json=REQUEST)
    assert second.headers["X-Voxline-Cache"] == "hit"
    assert second.data == first.data
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert engine.started == 1
    query = client.get("/tts_stream?text=Thank+you+for+calling.&format=pcm")
    assert query.headers["X-Voxline-Cache"] == "hit"  # same facts, other transport


@pytest.mark.parametrize("change", [
    {"text": "Thank you for calling!"}, {"speaker": "bob"}, {"language": "de"},
    {"format": "l16"}, {"sample_rate": 8000}, {"temperature": 0.5}, {"seed": 1},
])
def test_anything_that_shapes_the_audio_is_a_miss(app, engine, change):
    client = app.test_client()
    client.post("/tts_stream", json=REQUEST)
    other = client.post("/tts_stream", json={**REQUEST, **change})
    assert other.headers["X-Voxline-Cache"] == "miss"
    assert engine.started == 2


def test_opt_out_neither_reads_nor_writes(app, engine):
    client = app.test_client()
    skipped = client.post("/tts_stream", json={**REQUEST, "cache": False})
    assert skipped.headers["X-Voxline-Cache"] == "bypass"
    assert client.post("/tts_stream", json=REQUEST).headers["X-Voxline-Cache"] == "miss"
    again = client.get("/tts_stream?text=Thank+you+for+calling.&format=pcm&cache=0")
    assert again.headers["X-Voxline-Cache"] == "bypass"
    assert engine.started == 3


def test_forced_length_benchmark_requests_are_never_cached(app, engine):
    client = app.test_client()
    for _ in range(2):
        forced = client.post("/tts_stream", json={**REQUEST, "min_new_tokens": 5,
                                                  "max_new_tokens": 5})
        assert forced.headers["X-Voxline-Cache"] == "bypass"
    assert engine.started == 2


def test_cache_off_by_setting(make_app, engine):
    client = make_app(engine, phrase_cache_mb=0).test_client()
    for _ in range(2):
        assert client.post("/tts_stream", json=REQUEST).headers["X-Voxline-Cache"] == "bypass"
    assert engine.started == 2


def test_concurrent_identical_requests_synthesise_once(app, engine, lookups):
    engine.gate = threading.Event()
    results: list = []

    def ask() -> None:
        response = app.test_client().post("/tts_stream", json=REQUEST)
        results.append((response.headers["X-Voxline-Cache"], response.data))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    # All six reach the cache while the first is still synthesising (held by the gate).
    wait_until(lambda: len(lookups) == 6 and engine.started == 1, 10, "six lookups")
    engine.gate.set()
    for t in threads:
        t.join(10)
    assert engine.started == 1
    assert sorted(kind for kind, _ in results) == ["miss"] + ["shared"] * 5
    assert len({data for _, data in results}) == 1
    assert app.test_client().post("/tts_stream", json=REQUEST).headers["X-Voxline-Cache"] == "hit"


def test_followers_keep_streaming_when_the_leader_hangs_up(app, engine, lookups):
    engine.gate = threading.Event()
    _, leader = call_wsgi(app, method="POST", path="/tts_stream", json=REQUEST)
    chunks = iter(leader)
    engine.gate.set()
    next(chunks)  # the leader has audio, so a follower will find the render in flight
    engine.gate.clear()
    follower: list = []
    thread = threading.Thread(target=lambda: follower.append(
        app.test_client().post("/tts_stream", json=REQUEST).data))
    thread.start()
    wait_until(lambda: lookups == ["lead", "follow"], 10, "the follower joining the render")
    engine.gate.set()
    leader.close()  # the leader's client goes away mid-stream
    thread.join(10)
    assert len(follower[0]) == 2 * engine.n_chunks * engine.chunk_len
    assert engine.started == 1 and engine.closed == 0
    assert app.test_client().post("/tts_stream", json=REQUEST).headers["X-Voxline-Cache"] == "hit"


def test_a_stream_cut_short_is_not_cached(app, engine):
    engine.n_chunks = 20
    engine.permits = threading.Semaphore(1)  # the render cannot finish before the client goes
    _, body = call_wsgi(app, method="POST", path="/tts_stream", json=REQUEST)
    next(iter(body))
    body.close()  # client gone
    engine.permits = None
    again = app.test_client().post("/tts_stream", json=REQUEST)
    assert again.headers["X-Voxline-Cache"] == "miss"
    assert len(again.data) == 2 * 20 * engine.chunk_len


def test_a_failed_synthesis_is_not_cached(app, engine):
    from voxline.server.body import StreamAborted

    engine.fail_after = 1
    client = app.test_client()
    with pytest.raises(StreamAborted):
        client.post("/tts_stream", json=REQUEST).get_data()
    engine.fail_after = None
    again = client.post("/tts_stream", json=REQUEST)
    assert again.headers["X-Voxline-Cache"] == "miss"
    assert len(again.data) == 2 * engine.n_chunks * engine.chunk_len


def test_deleting_a_voice_drops_its_renders(admin_app, tmp_path):
    engine = FakeEngine()
    write_clip(tmp_path / "speakers" / "default.wav", speech_like(4))
    write_clip(tmp_path / "speakers" / "extra.wav", speech_like(4, level=0.1))  # other latents
    app = admin_app(engine)
    client = app.test_client()
    assert client.post("/tts_stream", json={**REQUEST, "speaker": "extra"}).data
    assert client.post("/tts_stream", json=REQUEST).data
    phrases = app.services.phrases
    assert phrases.stats()[0] == 2
    deleted = client.delete("/v1/voices/extra", headers=ADMIN)
    assert deleted.json["cached_renders_dropped"] == 1
    assert phrases.stats()[0] == 1


# The cache on its own.

def test_lru_is_bounded_in_bytes_and_survives_a_restart(tmp_path):
    cache = PhraseCache(tmp_path, max_bytes=2500)
    for name in "abc":
        cache.store(name, "g", name.encode() * 1000)
        time.sleep(0.01)  # distinct file times
    assert cache.stats() == (2, 2000)
    assert cache.lookup("a").kind == "lead"  # evicted (and now being led)
    assert cache.lookup("b").data == b"b" * 1000  # used: now the most recent
    cache.store("d", "g", b"d" * 1000)
    assert cache.lookup("c").kind == "lead"  # c was the least recently used
    assert sorted(p.stem for p in (tmp_path / "g").iterdir()) == ["b", "d"]
    again = PhraseCache(tmp_path, max_bytes=1500)  # restart with a smaller bound
    assert again.stats() == (1, 1000)
    assert again.lookup("d").kind == "hit"  # the most recently used of the two


def test_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "phrases"
    blocker.write_text("a file where the folder should be")
    cache = PhraseCache(blocker, max_bytes=10_000)
    cache.store("k", "g", b"data")
    assert cache.stats() == (0, 0)
    assert "could not write phrase cache entry" in caplog.text


def test_vanished_or_leftover_files(tmp_path):
    cache = PhraseCache(tmp_path, max_bytes=10_000)
    cache.store("k", "g", b"data")
    (tmp_path / "g" / "k.bin").unlink()
    assert cache.lookup("k").kind == "lead"
    crashed, writing = tmp_path / "g" / ".crash.tmp", tmp_path / "g" / ".live.tmp"
    crashed.write_bytes(b"half")
    writing.write_bytes(b"half")  # another process sharing the folder is writing it now
    an_hour_ago = time.time() - 3600
    os.utime(crashed, (an_hour_ago, an_hour_ago))
    PhraseCache(tmp_path, max_bytes=10_000)
    assert not crashed.exists() and writing.exists()


def test_oversized_render_is_not_stored(tmp_path):
    cache = PhraseCache(tmp_path, max_bytes=100)
    cache.store("k", "g", b"x" * 101)
    assert cache.stats() == (0, 0)


def test_key_covers_every_fact_in_any_order():
    assert phrase_key(a=1, b="x") == phrase_key(b="x", a=1)
    assert phrase_key(a=1, b="x") != phrase_key(a=1, b="y")
    assert len({phrase_key(text=t) for t in ("Hi", "Hi ", "hi")}) == 3


def test_cache_files_keep_lru_order_across_restarts(tmp_path):
    cache = PhraseCache(tmp_path, max_bytes=10_000)
    cache.store("old", "g", b"1" * 10)
    cache.store("new", "g", b"2" * 10)
    past = time.time() - 100
    os.utime(tmp_path / "g" / "new.bin", (past, past))
    restarted = PhraseCache(tmp_path, max_bytes=15)  # room for one: the older file goes
    assert restarted.lookup("old").kind == "hit"
    assert restarted.lookup("new").kind == "lead"


def test_an_implausibly_short_render_is_not_cached(app, engine, caplog):
    # 1 s of audio for 60+ characters is 60 characters per second: XTTS stopped early.
    text = {**REQUEST, "text": "This sentence is far too long for one second of speech, surely."}
    client = app.test_client()
    for _ in range(2):
        response = client.post("/tts_stream", json=text)
        assert response.headers["X-Voxline-Cache"] == "miss" and response.data
    assert engine.started == 2
    assert "implausible length" in caplog.text


def test_admin_purges_all_renders_or_one_voices(admin_app, tmp_path):
    engine = FakeEngine()
    write_clip(tmp_path / "speakers" / "default.wav", speech_like(4))
    write_clip(tmp_path / "speakers" / "extra.wav", speech_like(4, level=0.1))
    client = admin_app(engine).test_client()
    for speaker in ("extra", "default"):
        assert client.post("/tts_stream", json={**REQUEST, "speaker": speaker}).data
    assert client.delete("/v1/cache?voice=extra").status_code == 401  # admin only
    one = client.delete("/v1/cache?voice=extra", headers=ADMIN)
    assert one.status_code == 200 and one.json["purged"] == 1
    assert client.delete("/v1/cache?voice=nobody", headers=ADMIN).status_code == 404
    again = client.post("/tts_stream", json={**REQUEST, "speaker": "extra"})
    assert again.headers["X-Voxline-Cache"] == "miss" and again.data
    assert client.delete("/v1/cache", headers=ADMIN).json["purged"] == 2
    kept = client.post("/tts_stream", json={**REQUEST, "speaker": "default"})
    assert kept.headers["X-Voxline-Cache"] == "miss"
