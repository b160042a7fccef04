"""Instrumentation for Piper's model sessions, shared by the word-timing bench and its tests."""

from __future__ import annotations

from collections.abc import Callable


class ReportingSessions:
    """An engine's sessions, telling `on_run` as each model run begins (to prove what runs
    beside the model, or to time from there)."""

    def __init__(self, sessions, on_run: Callable[[], None]) -> None:
        self._sessions, self._on_run = sessions, on_run

    def get_outputs(self):
        return self._sessions.get_outputs()

    def run(self, output_names, inputs, run_options=None):
        self._on_run()
        return self._sessions.run(output_names, inputs, run_options)
