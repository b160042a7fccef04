"""The Dockerfile runs the README's own setup and serve scripts (CI runs the same ones)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_run_steps_are_the_readme_scripts():
    runs = [arg for op, arg in instructions() if op == "RUN"]
    readme = (ROOT / "README.md").read_text()
    scripts = {m for run in runs for m in re.findall(r"scripts/\w+", run)}
    assert scripts == {"scripts/setup"}
    assert any(run.startswith("scripts/setup") for run in runs)
    assert "requirements-gpu.txt" in " ".join(runs) and "requirements-gpu.txt" in readme
    (cmd,) = [arg for op, arg in instructions() if op == "CMD"]
    assert cmd == '["scripts/serve"]'
    for script in ("scripts/setup", "scripts/serve"):
        assert script in readme
        assert os.access(ROOT / script, os.X_OK)


def test_image_listens_where_the_manifests_probe():
    env = dict(re.findall(r"(VOXLINE_BIND)=(\S+)", (ROOT / "Dockerfile").read_text()))
    assert env["VOXLINE_BIND"].endswith(":8020")
    assert ("EXPOSE", "8020") in instructions()
