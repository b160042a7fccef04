"""Piper's decoder in windows: the cut of the frames, and what a real voice streams with it."""

from __future__ import annotations

import numpy as np
import pytest

from voxline.engines.base import SynthesisParams, chunk_parts
from voxline.engines.piper_decoder import CONTEXT_FRAMES, FIRST_FRAMES, MAX_FRAMES, windows


@pytest.mark.parametrize("frames", [1, 40, 50, 51, 120, 339, 340, 345, 1000])
def test_windows_cover_every_frame_once_with_a_short_first(frames):
    ranges = windows(frames)
    assert ranges[0][0] == 0 and ranges[-1][1] == frames
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # no gap
    if frames > FIRST_FRAMES + CONTEXT_FRAMES:
        assert ranges[0] == (0, FIRST_FRAMES)
        assert all(CONTEXT_FRAMES <= e - s <= MAX_FRAMES + CONTEXT_FRAMES for s, e in ranges[1:])
    else:
        assert ranges == [(0, frames)]


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("piper")
    from voxline.engines.piper_engine import PiperEngine

    return PiperEngine(renders=2)


def test_a_sentence_streams_in_windows_with_each_word_in_the_chunk_of_its_end(engine):
    assert engine._split is not None  # the bundled voice's decoder reads only the frames
    text = ("The technician can visit between nine and noon tomorrow, so please make sure "
            "that someone is at home to let them in.")
    chunks = list(engine.stream(text, engine.builtin_voices()["joe"], "en", SynthesisParams()))
    sizes = [len(chunk_parts(c)[0]) for c in chunks]
    assert sizes[0] == FIRST_FRAMES * 256 and len(chunks) >= 3  # ~0.46 s first
    spoken = []
    for chunk in chunks:
        samples, words = chunk_parts(chunk)
        assert samples.dtype == np.float32 and np.abs(samples).max() <= 1.0
        for word in words:  # counted from this chunk's first sample: its end is in it
            assert word.end <= len(samples) and word.start <= word.end
            spoken.append(text[word.char_start:word.char_end])
    assert spoken == text.replace(",", "").replace(".", "").split()
