"""Parallel Piper renders, and a newcomer's first clause first.

Measured on this 2-core machine (bench/RESULTS.md, "Piper renders in parallel"): one
single-threaded ONNX session per concurrent render makes more audio per second than one
session with onnxruntime's default intra-op threads, and lets a newcomer's render start while
another caller's sentence is still rendering. `SessionPool` holds those sessions behind the one
method Piper calls (`run`, thread-safe); Piper's espeak phonemizer has its own lock.

`PieceStream` renders an utterance in steps no longer than a sentence, its first clause alone
(cut at a clause break, as realtime sessions cut their first segment), so the first audio of a
request is a clause's render away.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from voxline.engines.base import EngineStream, TimedChunk

logger = logging.getLogger(__name__)

# A clause mark (",;:" or a dash) followed by a space: where a first clause may end.
_CLAUSE = re.compile(r"[,;:\u2013\u2014](?=\s)|\s[-\u2013\u2014](?=\s)")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
FIRST_CLAUSE_MIN_CHARS = 12  # shorter clauses sound clipped on their own


def first_clause_end(text: str, min_chars: int = FIRST_CLAUSE_MIN_CHARS) -> int | None:
    """Where the first clause of the first sentence ends (an index into `text`), if that
    sentence has a clause break at least `min_chars` in and text follows it."""
    sentence = _SENTENCE_END.search(text)
    limit = sentence.start() if sentence else len(text)
    for mark in _CLAUSE.finditer(text, 0, limit):
        if mark.end() >= min_chars and text[mark.end():].strip():
            return mark.end()
    return None


def split_first_clause(text: str) -> list[tuple[int, str]]:
    """`text` as pieces to render in order, each with its offset: the first clause alone,
    then the rest (or the whole text when it has no early clause break)."""
    end = first_clause_end(text)
    if end is None:
        return [(0, text)]
    rest = len(text[end:]) - len(text[end:].lstrip())
    return [(0, text[:end]), (end + rest, text[end + rest:])]


class PieceStream(EngineStream):
    """Renders `text` piece by piece through `render` (the engine's own per-sentence
    generator); each step is the next chunk. Word offsets of timed chunks are moved from the
    piece to the whole text."""

    def __init__(self, text: str, render: Callable[[str], Iterator[np.ndarray | TimedChunk]]
                 ) -> None:
        self._pieces = split_first_clause(text)
        self._render = render
        self._current: Iterator[np.ndarray | TimedChunk] | None = None
        self._offset = 0

    def step(self) -> np.ndarray | TimedChunk | None:
        while True:
            if self._current is None:
                if not self._pieces:
                    return None
                self._offset, piece = self._pieces.pop(0)
                self._current = self._render(piece)
            chunk = next(self._current, None)
            if chunk is not None:
                return _shift_words(chunk, self._offset)
            self._current = None

    def close(self) -> None:
        close = getattr(self._current, "close", None)
        if close is not None:
            close()
        self._current, self._pieces = None, []


def _shift_words(chunk: np.ndarray | TimedChunk, offset: int) -> np.ndarray | TimedChunk:
    if not offset or not isinstance(chunk, TimedChunk) or not chunk.words:
        return chunk
    words = tuple(replace(w, char_start=w.char_start + offset, char_end=w.char_end + offset)
                  for w in chunk.words)
    return replace(chunk, words=words)


class SessionPool:
    """Several ONNX sessions of one model behind one `run`: each call takes a free one. A
    render that starts while no other runs takes the `wide` session (every core's threads),
    so a lone caller is not slowed to one core; renders that overlap take single-threaded
    ones, which together make more audio per second."""

    def __init__(self, sessions: Sequence, wide=None) -> None:
        self.size = len(sessions)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for session in sessions:
            self._free.put(session)
        self._wide = wide
        self._lock = threading.Lock()
        self._running = 0  # runs in progress: the wide session is only taken at 0

    def get_outputs(self):
        """The model's outputs (every session runs the same model)."""
        session = self._free.get()
        try:
            return session.get_outputs()
        finally:
            self._free.put(session)

    def run(self, output_names, inputs, run_options=None):
        with self._lock:
            wide = self._wide is not None and self._running == 0
            self._running += 1
        try:
            if wide:
                return self._wide.run(output_names, inputs, run_options)
            session = self._free.get()
            try:
                return session.run(output_names, inputs, run_options)
            finally:
                self._free.put(session)
        finally:
            with self._lock:
                self._running -= 1


def render_sessions(model: str | bytes, count: int, wide_threads: int) -> SessionPool:
    """`count` single-threaded CPU sessions of `model` (a path, or serialized bytes) that do
    not spin (overlapping renders share the cores with everything else) and, when
    `wide_threads` > 1, one with that many spinning threads for a render that runs alone:
    measured on 2 cores, a medium first sentence in 155 ms p50 against 198 ms without
    spinning and ~250 ms on one thread."""
    narrow = [cpu_session(model, 1, spin=False) for _ in range(count)]
    wide = cpu_session(model, wide_threads, spin=True) if wide_threads > 1 else None
    return SessionPool(narrow, wide)


def cpu_session(model: str | bytes, threads: int, spin: bool, profile_prefix: str | None = None):
    """One CPU session of `model` with `threads` intra-op threads; `profile_prefix` turns on
    onnxruntime's node profiler (bench/piper_floor.py reads the model's part shares from it)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return onnxruntime.InferenceSession(model, sess_options=options,
                                        providers=["CPUExecutionProvider"])
