"""The scheduler with fake engines: admission, queue limits, cancellation, errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.fakes import FakeEngine
from tests.waiting import wait_until
from voxline.engines.base import SynthesisParams, Utterance, chunk_parts
from voxline.scheduler import Cancelled, QueueFull, Scheduler, SynthesisError


def utterances(engine, n=1):
    voice = engine.builtin_voices()["alice"]
    return [Utterance(f"sentence {i}", voice, "en", SynthesisParams()) for i in range(n)]


def drain_in_thread(handle):
    out = {"chunks": []}

    def run():
        try:
            for chunk in handle.chunks():
                out["chunks"].append(chunk)
        except (SynthesisError, Cancelled) as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_client_gone_wakes_a_reader_blocked_on_the_next_chunk():
    engine = FakeEngine(n_chunks=10)
    engine.permits = threading.Semaphore(1)
    gone = threading.Event()
    scheduler = Scheduler()
    handle = scheduler.submit("r", engine, utterances(engine), client_gone=gone.is_set)
    thread, out = drain_in_thread(handle)
    time.sleep(0.1)  # the reader has its chunk and now waits for the next one
    gone.set()
    engine.permits.release()
    thread.join(5)
    assert not thread.is_alive()  # never left hanging
    assert len(out["chunks"]) <= 2
    assert isinstance(out["error"], Cancelled)  # never a clean, silently short end
    engine.permits = None
    assert scheduler.active == 0


def audio(handle) -> list[np.ndarray]:
    """A job's audio chunks (each sentence also ends with an empty chunk carrying its words)."""
    return [chunk_parts(c)[0] for c in handle.chunks() if len(c)]


def test_each_sentence_ends_with_its_estimated_words():
    engine = FakeEngine(n_chunks=2)
    handle = Scheduler().submit("w", engine, utterances(engine, 2))
    chunks = list(handle.chunks())
    words = [chunk_parts(c)[1] for c in chunks]
    assert [len(c) for c in chunks][2] == 0 and words[2] and not words[0]
    assert all(w.estimated and w.end <= 0 for w in words[2])


def test_sentences_run_in_order_and_errors_stay_with_their_request():
    engine = FakeEngine(n_chunks=2)
    scheduler = Scheduler()
    ok = scheduler.submit("ok", engine, utterances(engine, 3))
    assert len(audio(ok)) == 6
    engine.fail_after = 1
    bad = scheduler.submit("bad", engine, utterances(engine))
    with pytest.raises(SynthesisError):
        list(bad.chunks())
    engine.fail_after = None
    again = scheduler.submit("again", engine, utterances(engine))
    chunks = audio(again)
    np.testing.assert_array_equal(np.concatenate(chunks),
                                  engine.expected(engine.builtin_voices()["alice"]))


def test_queue_full_is_refused_at_once():
    engine = FakeEngine(n_chunks=3)
    engine.gate = threading.Event()
    scheduler = Scheduler(max_queue=1, max_active=1)
    first = scheduler.submit("a", engine, utterances(engine))
    second = scheduler.submit("b", engine, utterances(engine))
    started = time.monotonic()
    with pytest.raises(QueueFull) as refused:
        scheduler.submit("c", engine, utterances(engine))
    assert time.monotonic() - started < 0.5
    assert refused.value.retry_after >= 1
    engine.gate.set()
    assert len(audio(first)) == 3 and len(audio(second)) == 3


def test_exclusive_tasks_run_on_the_loop_between_steps():
    scheduler = Scheduler()
    seen = []
    assert scheduler.run("task", lambda: seen.append(threading.current_thread().name) or 42) == 42
    assert seen == ["voxline-scheduler"]
    with pytest.raises(ZeroDivisionError):
        scheduler.run("boom", lambda: 1 / 0)


def test_retry_after_counts_the_same_before_the_loop_admits():
    """Four jobs for two slots, all still waiting (the only worker is busy with a task): a
    fifth waits for three to finish, as it would once two of the four hold the slots."""
    engine = FakeEngine(n_chunks=1)
    engine.gate = threading.Event()  # admitted jobs hold their slots until the end
    scheduler = Scheduler(max_active=2, max_queue=2, target_load=0)
    holding, release = threading.Event(), threading.Event()
    task = threading.Thread(target=scheduler.run,
                            args=("hold", lambda: holding.set() or release.wait(10)))
    task.start()
    assert holding.wait(5)
    handles = [scheduler.submit(f"r{i}", engine, utterances(engine)) for i in range(4)]
    assert (scheduler.active, scheduler.depth) == (0, 4)
    with pytest.raises(QueueFull) as refused:
        scheduler.submit("r4", engine, utterances(engine))
    assert refused.value.retry_after == scheduler.retry_after() == 3  # 3 x 1 s a request
    release.set()
    task.join(5)
    wait_until(lambda: (scheduler.active, scheduler.depth) == (2, 2), 5, "two admitted")
    assert scheduler.retry_after() == 3
    engine.gate.set()
    for handle in handles:
        assert audio(handle)


def test_retry_after_is_within_2x_of_the_real_wait(make_app):
    """20 arrivals at a full server: the 503s' Retry-After estimates the wait the admitted
    requests really had (queue position x measured time per request). The engine makes 10 s
    of audio a second, so the count limits bind here, not the predicted lateness."""
    engine = FakeEngine(n_chunks=10, chunk_len=24000)
    engine.delay_s = 0.1  # 1 s per request alone
    app = make_app(engine, max_active=2, max_queue=2)
    speak = {"text": "Hello.", "format": "pcm", "cache": False}
    for _ in range(2):  # history: the measured time per request
        assert app.test_client().post("/tts", json=speak).status_code == 200
    results: list = []
    lock = threading.Lock()

    def call() -> None:
        started = time.monotonic()
        response = app.test_client().post("/tts_stream", json=speak)
        first_audio = time.monotonic() - started
        body = response.get_data() if response.status_code == 200 else b""
        with lock:
            results.append((response.status_code, first_audio,
                            response.headers.get("Retry-After"), len(body)))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join(30)
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    assert len(served) == 4 and len(refused) == 16
    waited = max(first for _, first, _, _ in served)  # the last one admitted
    for _, _, retry_after, _ in refused:
        assert waited / 2 <= int(retry_after) <= 2 * waited, (retry_after, waited)


def test_stop_finishes_the_work_in_hand_then_ends_the_workers():
    engine = FakeEngine(n_chunks=3)
    engine.gate = threading.Event()
    scheduler = Scheduler()
    before = set(threading.enumerate())
    handle = scheduler.submit("r", engine, utterances(engine))
    (worker,) = {t for t in threading.enumerate() if t.name == "voxline-scheduler"} - before
    scheduler.stop(timeout=0)  # while the job still waits on the engine
    with pytest.raises(RuntimeError):
        scheduler.submit("late", engine, utterances(engine))
    assert worker.is_alive()
    engine.gate.set()
    assert len(audio(handle)) == 3  # the job in hand is served whole
    worker.join(5)
    assert not worker.is_alive()
