"""Helpers that place test calls through the dialplan in voxline-test.conf and collect results."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from devtools.telephony.asterisk import Asterisk

FAMILY = "voxline-test"


@dataclass
class CallResult:
    """What the dialplan recorded about one call."""

    values: dict[str, str]
    recording: bytes

    def __getitem__(self, key: str) -> str:
        return self.values.get(key, "")

    @property
    def seconds(self) -> float:
        """Time from just before the AGI to just after it (dialplan timestamps)."""
        return float(self["t1"]) - float(self["t0"])


def hostport(address: tuple) -> str:
    """`host:port` of a socket address."""
    return f"{address[0]}:{address[1]}"


def start_call(
    asterisk: Asterisk, test_id: str, callee: str, caller: str, variables: dict[str, str]
) -> Path:
    """Originate Local/<callee>@voxline-test-callee with the ;1 side at <caller>."""
    rec = asterisk.path("rec", test_id)
    base = {"TEST_ID": test_id, "REC": str(rec), "MAXREC": "30"}
    asterisk.originate(
        f"Local/{callee}@voxline-test-callee", "voxline-test-caller", caller, {**base, **variables}
    )
    return rec


def finish_call(asterisk: Asterisk, test_id: str, rec: Path, timeout: float = 30) -> CallResult:
    """Wait for the caller side to end, then read the results and the recording."""
    asterisk.wait_db(FAMILY, f"{test_id}-end", timeout)
    values = {}
    for key, value in asterisk.db_show(FAMILY).items():
        if key.startswith(f"{test_id}-"):
            values[key[len(test_id) + 1 :]] = value
    return CallResult(values, read_settled(Path(f"{rec}.ulaw")))


def read_settled(path: Path, timeout: float = 3.0) -> bytes:
    """Read a recording once its size has stopped changing (MixMonitor writes from a thread)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        if size == last and size >= 0:
            break
        last = size
        time.sleep(0.15)
    return path.read_bytes() if path.exists() else b""


def agi_call(
    asterisk: Asterisk,
    test_id: str,
    text: str,
    variables: dict[str, str],
    caller: str = "record",
    callee: str = "agi",
) -> CallResult:
    """Speak `text` through the AGI (or FastAGI) example and return what the caller heard."""
    rec = start_call(asterisk, test_id, callee, caller, {"VOXLINE_TEXT": text, **variables})
    return finish_call(asterisk, test_id, rec)
