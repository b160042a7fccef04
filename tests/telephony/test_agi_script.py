"""The voxline.agi script as Asterisk runs it: a stdlib-only process that exits at hang-up."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_asterisk import FakeAsterisk

TELEPHONY = Path(__file__).resolve().parents[2] / "telephony"
SCRIPT = TELEPHONY / "voxline.agi"


def spawn(fake: FakeAsterisk, env: dict[str, str]) -> subprocess.Popen:
    """Start the script the way Asterisk does, but with -I -S: no site-packages, no PYTHONPATH."""
    return subprocess.Popen(
        [sys.executable, "-I", "-S", str(SCRIPT)],
        stdin=fake.theirs,
        stdout=fake.theirs,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_script_is_executable_and_parses_as_python_39():
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")
    for path in [SCRIPT, *sorted((TELEPHONY / "voxagi").glob("*.py"))]:
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


def test_script_speaks_with_the_stdlib_alone(stub, tmp_path):
    fake = FakeAsterisk(
        {"agi_arg_1": "Standalone, with a comma.", "agi_arg_2": "", "agi_arg_3": "en"}
    )
    env = {"VOXLINE_TTS_URL": stub.url, "VOXLINE_TTS_CACHE_DIR": str(tmp_path)}
    proc = spawn(fake, env)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        fake.close()
    assert proc.returncode == 0, err.decode()
    assert fake.variables()["VOXLINE_STATUS"] == "OK"
    assert [r["text"] for r in stub.requests] == ["Standalone, with a comma."]
    assert Path(fake.played()[0] + ".ulaw").stat().st_size > 1000


@pytest.mark.parametrize("how", ["sighup", "hangup-line", "eof"])
def test_hangup_while_synthesising_exits_at_once(stub, tmp_path, how):
    stub.mode = "slow"
    fake = FakeAsterisk({"agi_arg_1": "This takes forever."})
    proc = spawn(
        fake,
        {
            "VOXLINE_TTS_URL": stub.url,
            "VOXLINE_TTS_CACHE_DIR": str(tmp_path),
            "VOXLINE_TTS_FIRST_BYTE_TIMEOUT": "20",
        },
    )
    try:
        deadline = time.monotonic() + 10
        while not stub.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stub.requests, "the script never asked the server"
        started = time.monotonic()
        if how == "sighup":
            proc.send_signal(signal.SIGHUP)
        elif how == "hangup-line":
            fake.ours.sendall(b"HANGUP\n")
        else:
            fake.close()
        proc.wait(timeout=5)
        assert time.monotonic() - started < 0.5
        assert proc.returncode == 0
        assert os.listdir(tmp_path) == []  # no temp file left behind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        fake.close()
