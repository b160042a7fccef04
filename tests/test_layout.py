"""The suite's own layout: test folders are not packages, so two test files with one basename
would collide at collection (pytest imports each by its basename)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def test_test_file_basenames_are_unique():
    names = Counter(p.name for p in ROOT.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
