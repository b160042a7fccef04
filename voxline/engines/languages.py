"""Which of an engine's languages have a working text front end, and why the others do not."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# One short sentence per XTTS language, with a digit so number expansion runs too; not in Hindi:
# num2words has no Hindi, so coqui raises NotImplementedError on any Hindi text with a digit.
SAMPLES = {
    "en": "It is 3 o'clock.",
    "es": "Son las 3 en punto.",
    "fr": "Il est 3 heures.",
    "de": "Es ist 3 Uhr.",
    "it": "Sono le 3.",
    "pt": "São 3 horas.",
    "pl": "Jest godzina 3.",
    "tr": "Saat 3.",
    "ru": "Сейчас 3 часа.",
    "nl": "Het is 3 uur.",
    "cs": "Jsou 3 hodiny.",
    "ar": "الساعة 3.",
    "zh-cn": "现在3点。",
    "ja": "今は3時です。",
    "hu": "3 óra van.",
    "ko": "지금 3시입니다.",
    "hi": "अभी तीन बजे हैं।",
}

# coqui-tts names the optional front-end packages of a language by this extra.
EXTRAS = {"ja": "ja", "zh": "zh", "ko": "ko"}


@dataclass(frozen=True)
class LanguageSupport:
    """Languages whose front end works, in the engine's order, and the reason for each other."""

    usable: tuple[str, ...]
    unavailable: dict[str, str] = field(default_factory=dict)


def probe_languages(
    languages: Iterable[str], front_end: Callable[[str, str], object]
) -> LanguageSupport:
    """Run `front_end(sample_text, language)` once per language and sort them by the outcome."""
    usable: list[str] = []
    unavailable: dict[str, str] = {}
    for language in languages:
        try:
            front_end(SAMPLES.get(language, "Hello."), language)
        except Exception as exc:  # ImportError, NotImplementedError, a broken dictionary...
            unavailable[language] = _reason(language, exc)
            logger.warning("language %s unavailable: %s", language, unavailable[language])
        else:
            usable.append(language)
    return LanguageSupport(tuple(usable), unavailable)


def _reason(language: str, exc: Exception) -> str:
    """A message for clients and logs: what failed and, for a missing package, what to install."""
    reason = f"its text front end failed: {str(exc) or type(exc).__name__}"
    extra = EXTRAS.get(language.split("-")[0])
    if isinstance(exc, ImportError) and extra:
        reason += f" (install coqui-tts[{extra}])"
    return reason
