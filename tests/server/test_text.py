"""Sentence splitting: limits, order, and the same answer from many threads at once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from voxline.text import split_text

# A few sentences per language; texts are overlapping windows of them, so concurrent calls
# share sentences but differ in length and sentence count (the case that lost sentences).
SENTENCES = {
    "en": [
        "Hello there.",
        "Dr. Smith arrived at 9 a.m. today.",
        "Is it raining?",
        "Yes, it is!",
        "The meeting moved to room 4.",
        "Call me back, please.",
    ],
    "de": [
        "Guten Morgen.",
        "Wie geht es Ihnen heute?",
        "Das Treffen ist um 9 Uhr.",
        "Bitte rufen Sie zurück!",
        "Vielen Dank.",
    ],
    "fr": [
        "Bonjour à tous.",
        "M. Dupont est arrivé hier.",
        "Quelle heure est-il ?",
        "Il est midi !",
        "Merci beaucoup.",
    ],
    "es": [
        "Hola a todos.",
        "¿Dónde está la estación?",
        "Está a dos calles.",
        "¡Qué bien!",
        "Gracias por llamar.",
    ],
    "ru": [
        "Привет всем.",
        "Как дела?",
        "Встреча перенесена на завтра.",
        "Спасибо за звонок!",
        "До свидания.",
    ],
    "ja": ["こんにちは。", "今日はいい天気ですね。", "会議は明日です！", "ありがとうございます。"],
    "zh-cn": ["你好。", "今天天气很好。", "会议改到明天了！", "谢谢你的电话。"],
    "ar": ["كيف حالك؟", "الاجتماع غدا.", "شكرا لاتصالك!", "مرحبا بكم."],
}


def corpus() -> list[tuple[str, str]]:
    """(language, text) pairs: every window of 1 to all sentences of every language."""
    items = []
    for language, sentences in SENTENCES.items():
        joiner = "" if language in ("ja", "zh-cn") else " "
        for size in range(1, len(sentences) + 1):
            for start in range(len(sentences) - size + 1):
                items.append((language, joiner.join(sentences[start : start + size])))
    return items


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every 10 µs so interleavings inside one call are common."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def test_windows_split_into_their_sentences():
    for language, sentences in SENTENCES.items():
        joiner = "" if language in ("ja", "zh-cn") else " "
        assert split_text(joiner.join(sentences), 200, language) == sentences, language


def test_long_sentence_is_cut_within_the_limit_in_order():
    text = "one two three, four five six; seven eight nine ten eleven twelve"
    pieces = split_text(text, 20)
    assert all(0 < len(p) <= 20 for p in pieces)
    assert " ".join(pieces) == text


def test_sixteen_threads_agree_with_one(fast_switching):
    items = corpus()
    expected = [split_text(text, 200, language) for language, text in items]
    threads, rounds = 16, 8
    start = threading.Barrier(threads)
    mismatches: list[tuple[str, str, list[str]]] = []
    counts = [0] * threads

    def hammer(worker: int) -> None:
        start.wait()
        for r in range(rounds):
            # Each thread walks the corpus from its own offset: neighbours split different texts.
            for k in range(len(items)):
                i = (k + worker * 7 + r * 3) % len(items)
                language, text = items[i]
                got = split_text(text, 200, language)
                counts[worker] += 1
                if got != expected[i]:
                    mismatches.append((language, text, got))

    workers = [threading.Thread(target=hammer, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not any(w.is_alive() for w in workers)
    total = sum(counts)
    print(f"splits={total} mismatches={len(mismatches)}")
    assert total >= 10_000
    assert mismatches == [], f"{len(mismatches)} of {total} splits differ, e.g. {mismatches[:3]}"
