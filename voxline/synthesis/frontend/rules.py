"""Rewrites ahead of the grammar, for what NeMo's grammars read wrong (measured, see
docs/frontend.md): phone numbers, codes, street abbreviations, versions, units, currency codes.

Spelled forms (phones, codes) come out frozen; the others hand the grammar a form it reads well.
"""

from __future__ import annotations

import re
from functools import cache

from voxline.synthesis.frontend import spelling
from voxline.synthesis.frontend.words import Rule, Word, frozen

_PHONE = re.compile(
    r"(?<![\w.+/-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}"  # +44 20 7946 0958
    r"|0\d(?:[ .]\d{2}){4}"  # 06 12 34 56 78
    r"|(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[.-])\d{3}[.-]\d{4}"  # (555) 123-4567, 1-800-555-0142
    r"|\d{3}-\d{4}"  # 555-0142
    r")(?![\w-]|[.,]\d)"
)
# Letters and digits mixed in one token (with optional hyphens), not a number with a unit,
# an ordinal, a time, a decade or a house number ("221B", read well by the grammar).
_CODE = re.compile(
    r"(?<![\w.@/-])(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w@]|[-/.]\w)"
)
_NOT_A_CODE = re.compile(
    r"\d{1,2}h\d{2}|\d+(?:st|nd|rd|th|s|am|pm|er|re|e|ème|eme|nde?|[kmgµ]?[gmlsbBW]|kg|km|cm|mm|mi|ft|in|lbs?|oz|mph|kph|h|hrs?|min"
    r"|sec|ms|k|K|M|x|D|G|p|fps|Hz|kHz|MHz|GHz|MB|GB|KB|TB|kWh|mAh|V|W|A|C|F)|\d{1,4}[A-Z]",
)
_VERSION = re.compile(r"(?<![\w.])\d{1,6}(?:\.\d{1,6}){2,5}(?![\w]|\.\d)")
_GROUPED = re.compile(r"\d{1,3}(?:\.\d{3})+")  # 1.000.000: a number, not a version
# Where "." groups thousands and "," is the decimal mark.
_DOT_THOUSANDS = re.compile(r"(?<![\w.,])\d{1,3}(?:\.\d{3})+(?:,\d+)?(?![\w]|[.,]\d)")
_EURO = re.compile(r"(?<![\w.,])(\d{1,3}(?:[.\u00a0\u202f ]\d{3})+|\d+)(?:,(\d{1,2}))?\s?€")
_EUROS = {"es": ("euros", "con"), "fr": ("euros", ""), "de": ("Euro", ""), "it": ("euro", "e"),
          "pt": ("euros", "e")}
_FRENCH_TIME = re.compile(r"(?<![\w.,:])(\d{1,2})(?:\s?h\s?(\d{2})?|:(\d{2}))(?![\w:])")
_FRENCH_TITLES = re.compile(r"(?<!\w)(M\.|Mme|Mlle)(?=\s+[A-ZÉ])")
_FRENCH_TITLE = {"M.": "Monsieur", "Mme": "Madame", "Mlle": "Mademoiselle"}
# Units the French and Spanish grammars leave as written (measured).
_UNIT_NAMES = {
    "fr": {"kg": "kilogrammes", "km": "kilomètres", "cm": "centimètres", "mm": "millimètres",
           "m": "mètres", "g": "grammes", "l": "litres", "ml": "millilitres",
           "°C": "degrés Celsius", "km/h": "kilomètres heure"},
    "es": {"°C": "grados centígrados", "km/h": "kilómetros por hora"},
    "it": {"°C": "gradi centigradi", "km/h": "chilometri orari"},
}
_MONTHS_IT = ("gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre "
              "novembre dicembre").split()
_SLASHED_DATE = re.compile(r"(?<![\w/])(\d{1,2})/(\d{1,2})/(\d{4})(?![\w/])")
_TIMES = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)x(?!\w)")
_NUMBER_SIGN = re.compile(r"(?:(?<!\w)#|(?<!\w)No\.\s?)(?=\d)")
_UNITS = {"km/h": "kilometers per hour", "MB": "megabytes", "GB": "gigabytes",
          "KB": "kilobytes", "kB": "kilobytes", "TB": "terabytes", "kWh": "kilowatt hours",
          "mAh": "milliamp hours", "GHz": "gigahertz", "MHz": "megahertz", "kHz": "kilohertz"}
_UNIT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(" + "|".join(
    re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)) + r")(?!\w)")
_CURRENCY_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_CURRENCY = re.compile(r"(?<![\w.])(?:(\d[\d,]*(?:\.\d+)?)\s?(USD|EUR|GBP|JPY)"
                       r"|(USD|EUR|GBP|JPY)\s?(\d[\d,]*(?:\.\d+)?))(?!\w)")
# Address abbreviations the English grammar leaves alone; "St." and "Dr." depend on context.
_ADDRESS = {"Ave.": "Avenue", "Rd.": "Road", "Blvd.": "Boulevard", "Ln.": "Lane", "Ct.": "Court",
            "Hwy.": "Highway", "Pkwy.": "Parkway", "Sq.": "Square", "Ste.": "Suite",
            "approx.": "approximately"}
_ABBREVIATION = re.compile(r"(?<!\w)(?:St|Dr|" + "|".join(
    re.escape(a[:-1]) for a in _ADDRESS) + r")\.(?=\s|$|[,;:!?)])")
_WORD_BEFORE = re.compile(r"(\S+)\s+$")
_LOOK_BACK = 64  # characters searched for the word before an abbreviation
_WORD_AFTER = re.compile(r"\s+([\"'(]?\w)")


@cache
def rules_for(language: str) -> tuple[Rule, ...]:
    """The rewrites for one language (primary subtag), in priority order."""
    rules: list[Rule] = []
    if spelling.can_spell(language):
        rules += [_phone_rule(language), _version_rule(language), _code_rule(language)]
    if language in _EUROS:
        rules += [_euro_rule(language)]
    if language in ("de", "es", "it", "pt"):
        rules += [Rule("thousands", _DOT_THOUSANDS, _ungrouped)]
    if language in _UNIT_NAMES:
        rules += [_unit_names_rule(language)]
    if language == "fr":
        rules += [Rule("time", _FRENCH_TIME, _french_time),
                  Rule("title", _FRENCH_TITLES, _french_title)]
    if language == "it":
        rules += [Rule("date", _SLASHED_DATE, _italian_date)]
    if language == "en":
        rules += [Rule("number sign", _NUMBER_SIGN, _number_sign),
                  Rule("currency code", _CURRENCY, _currency),
                  Rule("unit", _UNIT, _unit),
                  Rule("times", _TIMES, _times),
                  Rule("abbreviation", _ABBREVIATION, _abbreviation)]
    return tuple(rules)


def _phone_rule(language: str) -> Rule:
    def render(m: re.Match[str], a: int, b: int) -> list[Word]:
        return frozen(spelling.telephone(m.group(), language), a, b)
    return Rule("telephone", _PHONE, render)


_DOTTED_DATE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{2,4}")


def _version_rule(language: str) -> Rule:
    point = {"en": "point", "de": "Punkt", "fr": "point", "es": "punto", "it": "punto",
             "pt": "ponto"}.get(language)

    def render(m: re.Match[str], a: int, b: int) -> list[Word] | None:
        if _DOTTED_DATE.fullmatch(m.group()) or _GROUPED.fullmatch(m.group()):
            return None
        parts = m.group().split(".")
        if point is None:
            return [Word(p, a, b) for p in parts]
        texts = [t for p in parts for t in (p, point)][:-1]
        return [Word(t, a, b) for t in texts]
    return Rule("version", _VERSION, render)


def _code_rule(language: str) -> Rule:
    def render(m: re.Match[str], a: int, b: int) -> list[Word] | None:
        if _NOT_A_CODE.fullmatch(m.group()):
            return None
        return frozen(spelling.spell_code(m.group(), language), a, b)
    return Rule("code", _CODE, render)


def _euro_rule(language: str) -> Rule:
    """"1.249,50 €" -> "1249 euros con 50": the grammars of these languages misread amounts
    with the sign after them (measured: German "eins punkt zwei vier neun", French "€")."""
    currency, conjunction = _EUROS[language]

    def render(m: re.Match[str], a: int, b: int) -> list[Word]:
        whole = re.sub(r"\D", "", m.group(1))
        words = [Word(whole, a, b), *frozen([currency], a, b)]
        cents = (m.group(2) or "").lstrip("0")
        if cents:
            words += frozen([conjunction], a, b) + [Word(cents, a, b)]
        return words
    return Rule("euro", _EURO, render)


def _ungrouped(m: re.Match[str], a: int, b: int) -> list[Word]:
    return [Word(m.group().replace(".", ""), a, b)]


def _french_time(m: re.Match[str], a: int, b: int) -> list[Word]:
    words = [Word(m.group(1), a, b), *frozen(["heures"], a, b)]
    minutes = m.group(2) or m.group(3)
    return words + ([Word(minutes.lstrip("0") or "0", a, b)] if minutes else [])


def _french_title(m: re.Match[str], a: int, b: int) -> list[Word]:
    return frozen([_FRENCH_TITLE[m.group(1)]], a, b)


def _unit_names_rule(language: str) -> Rule:
    names = _UNIT_NAMES[language]
    pattern = re.compile(r"(?<![\w.])(-?\d+(?:[.,]\d+)?)\s?(" + "|".join(
        re.escape(u) for u in sorted(names, key=len, reverse=True)) + r")(?![\w/])")

    def render(m: re.Match[str], a: int, b: int) -> list[Word]:
        return [Word(m.group(1), a, b), *frozen(names[m.group(2)].split(), a, b)]
    return Rule("unit", pattern, render)


def _italian_date(m: re.Match[str], a: int, b: int) -> list[Word] | None:
    day, month, year = (int(g) for g in m.groups())
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return None
    day_word = [Word(str(day), a, b)] if day != 1 else frozen(["primo"], a, b)
    return day_word + frozen([_MONTHS_IT[month - 1]], a, b) + [Word(str(year), a, b)]


def _number_sign(m: re.Match[str], a: int, b: int) -> list[Word]:
    return frozen(["number"], a, b)


def _currency(m: re.Match[str], a: int, b: int) -> list[Word]:
    amount, code = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    return [Word(_CURRENCY_CODES[code] + amount, a, b)]


def _unit(m: re.Match[str], a: int, b: int) -> list[Word]:
    name = _UNITS[m.group(2)]
    if m.group(1) == "1":
        name = name.replace("bytes", "byte").replace("hours", "hour")
    return [Word(m.group(1), a, b), *frozen(name.split(), a, b)]


def _times(m: re.Match[str], a: int, b: int) -> list[Word]:
    return [Word(m.group(1), a, b), *frozen(["times"], a, b)]


def _abbreviation(m: re.Match[str], a: int, b: int) -> list[Word]:
    text, abbreviation = m.string, m.group()
    before = _WORD_BEFORE.search(text, max(0, m.start() - _LOOK_BACK), m.start())
    after = _WORD_AFTER.match(text, m.end())
    after_name = bool(after and after.group(1)[-1].isupper())
    if abbreviation in ("St.", "Dr."):
        street = _follows_a_name(text, before)
        if not street and after_name:
            return frozen(["Saint" if abbreviation == "St." else "Doctor"], a, b)
        word = "Street" if abbreviation == "St." else "Drive"
    else:
        word = _ADDRESS[abbreviation]
    # The abbreviation's dot may also end the sentence: keep it there.
    ends = after is None and not text[m.end():].strip() or after_name
    return frozen([word + ("." if ends else "")], a, b)


def _follows_a_name(text: str, before: re.Match[str] | None) -> bool:
    """Whether the word before is a street's name: a number, or a capitalised word that is
    not the first of its sentence ("Baker St." vs "Visit St. Louis")."""
    if before is None:
        return False
    word = before.group(1)
    if any(c.isdigit() for c in word):
        return True
    if not word[:1].isupper() or word[-1] in ".!?":
        return False
    earlier = _WORD_BEFORE.search(text, max(0, before.start(1) - _LOOK_BACK), before.start(1))
    return earlier is not None and earlier.group(1)[-1] not in ".!?"
