"""SSML say-as: the content said the way `interpret-as` asks, words mapped to their source."""

from __future__ import annotations

import re

from voxline.synthesis.errors import InvalidRequest
from voxline.synthesis.frontend import spelling
from voxline.synthesis.frontend.words import SourceText, Word, frozen

MONTHS_EN = ("January February March April May June July August September October November "
             "December").split()
_ORDINAL_SUFFIX = {"de": ".", "fr": "e", "es": ".º", "it": "º", "pt": "º"}
_DATE_FORMATS = re.compile(r"^(?:[dmy]{1,3})$")


def say_as(source: SourceText, interpret_as: str, date_format: str | None,
           language: str) -> list[Word]:
    """Words for a say-as element's content. Forms the grammar reads (cardinal, date, time,
    currency) come back unfrozen, rewritten where needed, for the normaliser to finish."""
    text = source.text.strip()
    lead = len(source.text) - len(source.text.lstrip())
    start, end = source.span(lead, lead + len(text))
    if interpret_as in ("characters", "spell-out", "verbatim"):
        return _spelled(source, lead, language)
    if interpret_as == "digits" and spelling.can_spell(language):
        return frozen(spelling.digit_words(text, language), start, end)
    if interpret_as == "telephone" and spelling.can_spell(language):
        return frozen(spelling.telephone(text, language), start, end)
    if interpret_as in ("cardinal", "number") and language == "en":
        return [Word(_cardinal_en(text), start, end)]
    if interpret_as == "ordinal":
        return [Word(_ordinal(text, language), start, end)]
    if interpret_as == "date":
        return [Word(w, start, end) for w in _date(text, date_format, language).split()]
    return [Word(w, start, end) for w in text.split()]


def _spelled(source: SourceText, lead: int, language: str) -> list[Word]:
    """One word per character, each mapped to that character alone."""
    words = []
    for i, char in enumerate(source.text):
        if i < lead or char.isspace():
            continue
        said = spelling.spell(char, language) if spelling.can_spell(language) else [char]
        words += frozen(said, *source.span(i, i + 1))
    return words


def _cardinal_en(text: str) -> str:
    """Thousands separators, so the grammar cannot read "2048" as a year."""
    digits = text.replace(",", "")
    return f"{int(digits):,}" if digits.isdecimal() and digits.isascii() else text


def _ordinal(text: str, language: str) -> str:
    digits = re.sub(r"\D", "", text)
    if not digits:
        return text
    if language == "en":
        n = int(digits)
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return digits + suffix
    return digits + _ORDINAL_SUFFIX.get(language, "")


def _date(text: str, date_format: str | None, language: str) -> str:
    """A date in the order `format` gives (mdy, dmy, ymd, md, dm, ym, my, y...) rewritten
    unambiguously: "December 3, 2026" in English, day.month.year elsewhere."""
    fmt = (date_format or "mdy").lower()
    parts = re.findall(r"\d+", text)
    if not _DATE_FORMATS.match(fmt) or len(parts) != len(fmt):
        raise InvalidRequest("invalid_ssml", f"say-as date {text!r} does not match format "
                             f"{fmt!r}", "text")
    values = dict(zip(fmt, (int(p) for p in parts), strict=True))
    day, month, year = values.get("d"), values.get("m"), values.get("y")
    if month is not None and not 1 <= month <= 12 or day is not None and not 1 <= day <= 31:
        raise InvalidRequest("invalid_ssml", f"say-as date {text!r} is not a date in format "
                             f"{fmt!r}", "text")
    if language == "en":
        said = [MONTHS_EN[month - 1]] if month else []
        if day:
            said.append(f"{day}," if year else str(day))
        if year:
            said.append(str(year))
        return " ".join(said).rstrip(",")
    return ".".join(str(v) for v in (day, month, year) if v is not None)
