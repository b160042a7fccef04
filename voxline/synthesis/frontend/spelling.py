"""Saying things character by character: digits, letters, phone numbers, codes."""

from __future__ import annotations

import re

DIGITS = {
    "en": "zero one two three four five six seven eight nine",
    "es": "cero uno dos tres cuatro cinco seis siete ocho nueve",
    "fr": "zéro un deux trois quatre cinq six sept huit neuf",
    "de": "null eins zwei drei vier fünf sechs sieben acht neun",
    "it": "zero uno due tre quattro cinque sei sette otto nove",
    "pt": "zero um dois três quatro cinco seis sete oito nove",
    "nl": "nul een twee drie vier vijf zes zeven acht negen",
    "pl": "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć",
    "tr": "sıfır bir iki üç dört beş altı yedi sekiz dokuz",
    "cs": "nula jedna dva tři čtyři pět šest sedm osm devět",
    "ru": "ноль один два три четыре пять шесть семь восемь девять",
    "hu": "nulla egy kettő három négy öt hat hét nyolc kilenc",
}
PLUS = {"en": "plus", "es": "más", "fr": "plus", "de": "plus", "it": "più", "pt": "mais",
        "nl": "plus", "pl": "plus", "tr": "artı", "cs": "plus", "ru": "плюс", "hu": "plusz"}
# Symbols read out when spelling (SSML say-as characters), English only.
SYMBOLS_EN = {"@": "at", ".": "dot", "-": "dash", "_": "underscore", "/": "slash", "#": "hash",
              "+": "plus", "*": "star", "&": "and", "%": "percent", "$": "dollar"}
_GROUP = re.compile(r"\d+")


def can_spell(language: str) -> bool:
    return language in DIGITS


def digit_words(digits: str, language: str) -> list[str]:
    """Each digit of `digits` as a word ("042" -> zero four two); other characters skipped."""
    names = DIGITS[language].split()
    return [names[int(c)] for c in digits if c.isdecimal() and c.isascii()]


def letter(char: str, language: str) -> str:
    """A letter as its name. English "A" gets a comma: espeak reads a bare "A" as the article."""
    upper = char.upper()
    return "A," if upper == "A" and language == "en" else upper


def spell(text: str, language: str) -> list[str]:
    """Every character of `text` as a word: digits by name, letters as capitals, symbols by
    name in English (others dropped)."""
    words = []
    for char in text:
        if char.isdecimal() and char.isascii():
            words += digit_words(char, language)
        elif char.isalpha():
            words.append(letter(char, language))
        elif language == "en" and char in SYMBOLS_EN:
            words.append(SYMBOLS_EN[char])
    return words


def telephone(number: str, language: str) -> list[str]:
    """A phone number digit by digit, a comma between its groups: "555-0142" -> "five five
    five, zero one four two"; a leading "+" is said."""
    words = [PLUS[language]] if number.lstrip().startswith("+") else []
    groups = _GROUP.findall(number)
    for i, group in enumerate(groups):
        said = digit_words(group, language)
        if i < len(groups) - 1 and said:
            said[-1] += ","
        words += said
    return words


def spell_code(code: str, language: str) -> list[str]:
    """A code of letters and digits ("K7-42B") character by character, a comma at each hyphen;
    parts that are whole words (four letters or more) stay words."""
    words: list[str] = []
    parts = [p for p in code.split("-") if p]
    for i, part in enumerate(parts):
        said = [part] if part.isalpha() and len(part) >= 4 else spell(part, language)
        if i < len(parts) - 1 and said:
            said[-1] = said[-1].rstrip(",") + ","
        words += said
    return words
