"""NeMo's normaliser in child processes, so a grammar never holds the server's GIL.

pynini's composition runs with the GIL held: measured on English, every call (10-40 ms)
stalled every other thread of the server for as long, and a grammar's load for 0.5-5.7 s. In
child processes the server's threads keep streaming while a text is normalised, and the
windows of one text (`normalize.py` cuts them) run in parallel, one per process: this is what
brings a number-heavy reply's front end within its time-to-first-audio budget.

The children are started with `spawn` (never `fork`: the server is multi-threaded) and load
the compiled grammar once. A child that dies breaks the pool: the texts in flight are read as
written (logged), and the next call starts a fresh pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from voxline.synthesis.frontend.nemo import new_normalizer, quiet_nemo, spoken_or_written

logger = logging.getLogger(__name__)

# A window is at most 16 words of at most 64 characters (normalize.py): measured worst cases
# take well under a second; this bounds a request's wait if a child hangs or is overloaded.
RESULT_TIMEOUT_S = 10.0
# Starting a child: importing NeMo and loading the grammar (en ~2-4 s, de ~6 s on 2 cores).
START_TIMEOUT_S = 300.0
PARENT_CHECK_S = 1.0

_normalizer = None  # the child's NeMo Normalizer


def _load_in_child(folder: str, language: str) -> None:
    global _normalizer

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                     name="grammar-parent-watch").start()
    quiet_nemo()
    _normalizer = new_normalizer(folder, language)


def _exit_with_parent(parent: int) -> None:
    """End this child when the server is gone: a killed server (SIGKILL, OOM) never tells
    its children, and they hold its task queue open themselves, so they would wait forever
    (measured: they outlived a killed test run, 117 MiB each)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _normalize_in_child(text: str) -> tuple[str, str | None]:
    return spoken_or_written(_normalizer, text)


def _ready_in_child() -> int:
    return 0 if _normalizer is None else 1


class GrammarProcesses:
    """`processes` children, each with the compiled grammar of one language loaded."""

    def __init__(self, folder: str, language: str, processes: int) -> None:
        self.language = language
        self._folder = folder
        self._processes = processes
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self._processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_in_child, initargs=(self._folder, self.language))
        # Submitted together, the tasks start every child now (a pool spawns a child per
        # task while none is idle), so each has loaded its grammar before the server is ready.
        warm = [executor.submit(_ready_in_child) for _ in range(self._processes)]
        try:
            for future in warm:
                future.result(timeout=START_TIMEOUT_S)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return executor

    def normalize_many(self, texts: Sequence[str]) -> list[tuple[str, str | None]]:
        """Each text normalised (in parallel across the children), with the error that left
        it as written, if any."""
        if not texts:
            return []
        executor = self._current()
        # Longest first: a free child takes the next, so the last to finish is a short one.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        try:
            submitted = {i: executor.submit(_normalize_in_child, texts[i]) for i in order}
        except BrokenProcessPool as exc:
            self._broken(executor, exc)
            return [(t, "grammar processes restarting") for t in texts]
        futures = [submitted[i] for i in range(len(texts))]
        results = []
        for text, future in zip(texts, futures, strict=True):
            try:
                results.append(future.result(timeout=RESULT_TIMEOUT_S))
            except FutureTimeout:
                future.cancel()
                results.append((text, f"no answer in {RESULT_TIMEOUT_S:.0f} s"))
            except BrokenProcessPool as exc:
                self._broken(executor, exc)
                results.append((text, "a grammar process died"))
        return results

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                raise RuntimeError(f"{self.language} grammar processes are closed")
            return self._executor

    def _broken(self, executor: ProcessPoolExecutor, exc: BaseException) -> None:
        """Replace a broken pool once (the first caller to see it), in the background: the
        new children load their grammar while requests read their numbers as written."""
        with self._lock:
            if self._executor is not executor or isinstance(executor, _Restarting):
                return
            logger.error("%s grammar process died (%s): restarting them", self.language, exc)
            self._executor = _Restarting(self)
        threading.Thread(target=self._restart, name="grammar-restart", daemon=True).start()

    def _restart(self) -> None:
        try:
            fresh = self._start()
        except Exception as exc:  # noqa: BLE001 - keep answering, as written
            logger.error("%s grammar processes could not restart: %s", self.language, exc)
            return
        with self._lock:
            if isinstance(self._executor, _Restarting):
                self._executor = fresh
                return
        fresh.shutdown(wait=False, cancel_futures=True)  # closed meanwhile


class _Restarting:
    """Stands in for the pool while a new one starts: every submit is refused as broken."""

    def __init__(self, owner: GrammarProcesses) -> None:
        self.owner = owner

    def submit(self, *args, **kwargs):
        raise BrokenProcessPool("grammar processes restarting")

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass
