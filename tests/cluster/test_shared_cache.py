"""Replicas sharing VOXLINE_CACHE_DIR: concurrent writers (real processes) never leave a wrong
or torn entry, and the LRU index rebuilt from the folder is consistent."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile

from voxline.phrase_cache import PhraseCache
from voxline.voices.cache import ConditioningCache

KEYS = [f"{i:064x}" for i in range(12)]


def content(key: str, round_: int) -> bytes:
    """What every writer stores under `key`: its size varies by round, its bytes by key."""
    block = hashlib.sha256(key.encode()).digest()
    return block * (200 + 37 * round_)


def valid(key: str, data: bytes) -> bool:
    block = hashlib.sha256(key.encode()).digest()
    return len(data) % 32 == 0 and data == block * (len(data) // 32)


def group(key: str) -> str:
    """Renders of one voice share a group, and the voice is part of the key."""
    return f"g{int(key, 16) % 2}"


def phrase_writer(folder: str, seed: int, rounds: int, bad: multiprocessing.Queue) -> None:
    """Store, look up and rescan at random, with a bound small enough to evict all the time."""
    rng = np.random.default_rng(seed)
    cache = PhraseCache(Path(folder), max_bytes=12 * 32 * 300)
    for i in range(rounds):
        key = KEYS[rng.integers(len(KEYS))]
        cache.store(key, group(key), content(key, int(rng.integers(5))))
        wanted = KEYS[rng.integers(len(KEYS))]
        found = cache.lookup(wanted)
        if found.kind == "hit" and not valid(wanted, found.data):
            bad.put(f"a hit on {wanted[-4:]} returned bytes of another key or a torn file")
        elif found.kind == "lead":  # nothing rendered: end the flight, as a failed render does
            cache.release(wanted, found.reader.tape)
            found.reader.close()
        if i % 50 == 0:
            PhraseCache(Path(folder), max_bytes=cache.max_bytes)  # a replica starting up


def latent_writer(folder: str, seed: int, rounds: int, bad: multiprocessing.Queue) -> None:
    rng = np.random.default_rng(seed)
    cache = ConditioningCache(Path(folder))
    for _ in range(rounds):
        key = KEYS[rng.integers(4)]
        value = float(int(key, 16) + 1)
        size = int(rng.integers(1, 2000))
        cache.store(key, {"latent": np.full(size, value, np.float32)})
        loaded = cache.load(KEYS[rng.integers(4)])
        if loaded is not None:
            latent = loaded["latent"]
            if not (latent.size and np.all(latent == latent[0]) and latent[0] >= 1):
                bad.put(f"a latent entry read back wrong: {latent[:4]}")


def run_processes(target, folder: Path, rounds: int) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    bad = ctx.Queue()
    procs = [ctx.Process(target=target, args=(str(folder), s, rounds, bad)) for s in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    found = []
    while not bad.empty():
        found.append(bad.get())
    return found


def test_phrase_cache_shared_by_processes_keeps_every_entry_whole(tmp_path):
    assert run_processes(phrase_writer, tmp_path, 400) == []
    files = list(tmp_path.glob("*/*.bin"))
    assert files and all(valid(f.stem, f.read_bytes()) for f in files)
    assert not list(tmp_path.glob("*/.*.tmp"))
    cache = PhraseCache(tmp_path, max_bytes=12 * 32 * 300)
    entries, size = cache.stats()
    assert entries == len(list(tmp_path.glob("*/*.bin"))) and size <= cache.max_bytes


def test_latent_cache_shared_by_processes_never_reads_a_torn_entry(tmp_path):
    assert run_processes(latent_writer, tmp_path, 300) == []
    cache = ConditioningCache(tmp_path)
    for key in KEYS[:4]:
        entry = cache.load(key)
        assert entry is not None and np.all(entry["latent"] == float(int(key, 16) + 1))
    assert not list(tmp_path.glob("*.tmp"))


PHRASES = ["Good morning.", "Your order has shipped.", "Please hold the line.", "Thank you."]


@pytest.mark.slow
def test_two_replicas_sharing_a_cache_folder(spawn_server, tmp_path):
    """Same and different phrases at once on two replicas; every file is a whole render."""
    env = {"VOXLINE_ENGINE": "tone", "VOXLINE_CACHE_DIR": str(tmp_path / "shared")}
    servers = [spawn_server(**env), spawn_server(**env)]
    bodies = [{"text": t, "format": "wav", "speaker": v} for t in PHRASES for v in ("tone-a",)]
    errors: list[str] = []

    def hammer(url: str, order: list[dict]) -> None:
        with requests.Session() as session:
            for body in order * 3:
                response = session.post(url + "/tts_stream", json=body, timeout=30)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:100]}")

    threads = [
        threading.Thread(target=hammer, args=(s.url, bodies[::step]))
        for s in servers
        for step in (1, -1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []

    fresh = {}
    for body in bodies:
        response = requests.post(servers[0].url + "/tts_stream", json={**body, "cache": False})
        fresh[response.content] = body["text"]
    files = list((tmp_path / "shared" / "phrases").glob("*/*.bin"))
    assert len(files) == len(bodies)
    for path in files:
        data = path.read_bytes()
        audio, rate = soundfile.read(io.BytesIO(data))
        assert rate == 24000 and len(audio) > 0
        assert data in fresh, f"{path.name} is not a whole render of any phrase"

    # A replica started on the shared folder indexes the other's renders: all hits, same bytes.
    third = spawn_server(**env)
    for body in bodies:
        response = requests.post(third.url + "/tts_stream", json=body, timeout=30)
        assert response.headers["X-Voxline-Cache"] == "hit"
        assert fresh[response.content] == body["text"]
