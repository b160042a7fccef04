"""The tiny XTTS engine and voices the stepping tests share (a model per test module)."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.engines.base import Clip
from voxline.engines.xtts_engine import XttsEngine


@pytest.fixture(scope="module")
def engine(tiny_xtts):
    """Small chunks (4, then 10 tokens), so short requests cross chunk edges."""
    return XttsEngine(tiny_xtts, device="cpu", chunk_schedule=(4, 10))


@pytest.fixture(scope="module")
def voices(engine):
    """Two cloned voices of different pitch and a studio speaker."""
    rate = 16000
    t = np.arange(3 * rate) / rate
    low = 0.3 * np.sin(2 * np.pi * 110 * t)
    high = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * np.sin(2 * np.pi * 900 * t)
    return {
        "low": engine.compute_conditioning([Clip(low.astype(np.float32), rate, "synthetic")]),
        "high": engine.compute_conditioning([Clip(high.astype(np.float32), rate, "synthetic")]),
        "studio": engine.builtin_voices()["Studio Sine"],
    }
