"""Waiting for another thread or process to reach a state: bounded polling, never a fixed
sleep (a fixed sleep is a guess that a loaded CI machine eventually proves wrong)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float = 10.0,
               what: str = "condition") -> None:
    """Poll `condition` every 10 ms until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(0.01)
