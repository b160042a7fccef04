"""The SSML subset Voxline speaks, parsed with defusedxml into flat segments.

Elements: speak, p, s, break (time / strength), say-as (interpret-as, format), sub (alias),
prosody (rate; pitch and volume are accepted and ignored), phoneme (alphabet ipa, ph). No DTD,
no entities beyond XML's five, nothing read from disk or network. Every segment keeps the
character offsets of its text in the document as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from voxline.synthesis.errors import InvalidRequest, TooLarge
from voxline.synthesis.frontend.words import SourceText

SSML_NS = "http://www.w3.org/2001/10/synthesis"
MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_BREAK_MS = 10_000.0
BREAK_STRENGTH_MS = {"none": 0.0, "x-weak": 100.0, "weak": 250.0, "medium": 500.0,
                     "strong": 750.0, "x-strong": 1000.0}
RATE_WORDS = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25,
              "x-fast": 1.5}
SAY_AS = ("characters", "spell-out", "verbatim", "digits", "telephone", "cardinal", "number",
          "ordinal", "date", "time", "currency")
_CONTAINERS = ("speak", "p", "s", "prosody")
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


@dataclass
class Segment:
    """One flat run of the document: text (possibly say-as / sub), a break, phonemes, or the
    end of a sentence or paragraph ("boundary")."""

    kind: str  # "text" | "break" | "phonemes" | "boundary"
    source: SourceText | None = None
    rate: float | None = None
    say_as: str | None = None
    format: str | None = None
    alias: str | None = None
    ph: str | None = None
    break_ms: float = 0.0


@dataclass
class _Node:
    tag: str
    attrib: dict[str, str]
    position: tuple[int, int]  # line, column (1-based) of its start tag
    children: list = field(default_factory=list)


@dataclass
class _Text:
    text: str
    starts: list[int]
    ends: list[int]


def parse_ssml(document: str, *, phonemes: bool, max_bytes: int = MAX_BYTES) -> list[Segment]:
    """Segments of an SSML document, or InvalidRequest (invalid_ssml with line and column,
    unsupported_ssml naming the element) / TooLarge."""
    raw = document.encode("utf-8")
    if len(raw) > max_bytes:
        raise TooLarge("ssml_too_large", f"an SSML document is at most {max_bytes} bytes", "text")
    root = _Builder(document, raw).parse()
    if root.tag != "speak":
        raise _unsupported(root, "the root element must be <speak>")
    return list(_segments(root, None, phonemes))


def _invalid(message: str, position: tuple[int, int]) -> InvalidRequest:
    line, column = position
    return InvalidRequest("invalid_ssml", f"{message} (line {line}, column {column})", "text")


def _unsupported(node: _Node, why: str = "") -> InvalidRequest:
    line, column = node.position
    detail = f": {why}" if why else ""
    return InvalidRequest("unsupported_ssml", f"<{node.tag}> is not supported{detail} "
                          f"(line {line}, column {column})", "text")


class _Builder:
    """Expat events (through defusedxml) into a small tree whose text keeps source offsets."""

    def __init__(self, document: str, raw: bytes) -> None:
        self._document, self._raw = document, raw
        self._ascii = len(raw) == len(document)
        self._char_of: list[int] | None = None
        self._stack: list[_Node] = []
        self._root: _Node | None = None
        self._pending: tuple[int, str] | None = None  # character data awaiting its end offset
        # The document arrives as text: its bytes are UTF-8 whatever its declaration says.
        self._parser = DefusedXMLParser(target=self, encoding="utf-8", forbid_dtd=True)
        self._expat = self._parser.parser
        self._expat.buffer_text = False

    def parse(self) -> _Node:
        try:
            self._parser.feed(self._raw)
            self._parser.close()
        except ParseError as exc:
            line, column = exc.position
            reason = expat.ErrorString(exc.code) if exc.code else str(exc)
            raise _invalid(f"malformed SSML: {reason}", (line, column + 1)) from exc
        except DefusedXmlException as exc:
            raise _invalid("DTDs, entities and external references are not allowed",
                           (self._expat.CurrentLineNumber,
                            self._expat.CurrentColumnNumber + 1)) from exc
        assert self._root is not None
        return self._root

    # The target interface of xml.etree's XMLParser.
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._flush()
        if len(self._stack) >= MAX_DEPTH:
            raise _invalid(f"elements nest deeper than {MAX_DEPTH}", self._here())
        node = _Node(_local_name(tag, self._here()), dict(attrib), self._here())
        if self._stack:
            self._stack[-1].children.append(node)
        else:
            self._root = node
        self._stack.append(node)

    def end(self, tag: str) -> None:
        self._flush()
        self._stack.pop()

    def data(self, text: str) -> None:
        self._flush()
        self._pending = (self._expat.CurrentByteIndex, text)

    def comment(self, text: str) -> None:
        self._flush()

    def pi(self, target: str, text: str) -> None:
        self._flush()

    def close(self) -> None:
        self._flush()

    def _here(self) -> tuple[int, int]:
        return self._expat.CurrentLineNumber, self._expat.CurrentColumnNumber + 1

    def _flush(self) -> None:
        """Give the last character data its source range, now that the next event is known."""
        if self._pending is None:
            return
        begin, text = self._pending
        self._pending = None
        if not self._stack:
            return  # whitespace around the root
        start, end = self._char(begin), self._char(self._expat.CurrentByteIndex)
        if self._document[start:end] == text:
            chunk = _Text(text, list(range(start, end)), list(range(start + 1, end + 1)))
        else:  # an entity or a normalised line break: every character gets the whole range
            chunk = _Text(text, [start] * len(text), [end] * len(text))
        children = self._stack[-1].children
        if children and isinstance(children[-1], _Text):
            last = children[-1]
            children[-1] = _Text(last.text + chunk.text, last.starts + chunk.starts,
                                 last.ends + chunk.ends)
        else:
            children.append(chunk)

    def _char(self, byte_index: int) -> int:
        if byte_index < 0:
            byte_index = len(self._raw)
        if self._ascii:
            return byte_index
        if self._char_of is None:
            self._char_of = [0] * (len(self._raw) + 1)
            position = 0
            for i, char in enumerate(self._document):
                size = len(char.encode("utf-8"))
                for k in range(size):
                    self._char_of[position + k] = i
                position += size
            self._char_of[position] = len(self._document)
        return self._char_of[byte_index]


def _local_name(tag: str, position: tuple[int, int]) -> str:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        if namespace != SSML_NS:
            raise InvalidRequest("unsupported_ssml", f"<{name}> in namespace {namespace} is not "
                                 f"supported (line {position[0]}, column {position[1]})", "text")
        return name
    return tag


def _segments(node: _Node, rate: float | None, phonemes: bool) -> Iterator[Segment]:
    if node.tag in _CONTAINERS:
        if node.tag == "prosody":
            rate = _rate(node, rate)
        yield from _children(node, rate, phonemes)
        if node.tag in ("p", "s"):
            yield Segment("boundary")
    elif node.tag == "break":
        yield Segment("break", break_ms=_break_ms(node))
    elif node.tag == "say-as":
        interpret = node.attrib.get("interpret-as", "")
        if interpret not in SAY_AS:
            raise _unsupported(node, f"interpret-as={interpret!r} (one of {', '.join(SAY_AS)})")
        yield Segment("text", _only_text(node), rate, say_as=interpret,
                      format=node.attrib.get("format"))
    elif node.tag == "sub":
        if not node.attrib.get("alias", "").strip():
            raise _invalid("<sub> needs an alias attribute", node.position)
        yield Segment("text", _only_text(node), rate, alias=node.attrib["alias"])
    elif node.tag == "phoneme":
        yield _phoneme(node, rate, phonemes)
    else:
        raise _unsupported(node)


def _children(node: _Node, rate: float | None, phonemes: bool) -> Iterator[Segment]:
    for child in node.children:
        if isinstance(child, _Text):
            yield Segment("text", SourceText(child.text, starts=child.starts, ends=child.ends),
                          rate)
        else:
            yield from _segments(child, rate, phonemes)


def _only_text(node: _Node) -> SourceText:
    if any(isinstance(c, _Node) for c in node.children):
        raise _invalid(f"<{node.tag}> may hold only text", node.position)
    texts = [c for c in node.children if isinstance(c, _Text)]
    if not texts or not texts[0].text.strip():
        raise _invalid(f"<{node.tag}> is empty", node.position)
    return SourceText(texts[0].text, starts=texts[0].starts, ends=texts[0].ends)


def _phoneme(node: _Node, rate: float | None, phonemes: bool) -> Segment:
    if not phonemes:
        raise _unsupported(node, "this engine does not take phonemes")
    alphabet = node.attrib.get("alphabet", "ipa")
    if alphabet != "ipa":
        raise _unsupported(node, f"alphabet {alphabet!r} (use ipa)")
    ph = node.attrib.get("ph", "").strip()
    if not ph:
        raise _invalid("<phoneme> needs a ph attribute", node.position)
    return Segment("phonemes", _only_text(node), rate, ph=ph)


def _break_ms(node: _Node) -> float:
    if "time" in node.attrib:
        match = _TIME.match(node.attrib["time"])
        if not match:
            raise _invalid(f"break time {node.attrib['time']!r} is not like 500ms or 1.5s",
                           node.position)
        ms = float(match.group(1)) * (1.0 if match.group(2) == "ms" else 1000.0)
        if ms > MAX_BREAK_MS:
            raise _invalid(f"a break is at most {MAX_BREAK_MS:g} ms", node.position)
        return ms
    strength = node.attrib.get("strength", "medium")
    if strength not in BREAK_STRENGTH_MS:
        raise _invalid(f"break strength {strength!r} is not one of "
                       f"{', '.join(BREAK_STRENGTH_MS)}", node.position)
    return BREAK_STRENGTH_MS[strength]


def _rate(node: _Node, outer: float | None) -> float | None:
    value = node.attrib.get("rate")
    if value is None:
        return outer
    if value in RATE_WORDS:
        rate = RATE_WORDS[value]
    elif match := _PERCENT.match(value):
        rate = float(match.group(1)) / 100.0
    elif match := _NUMBER.match(value):
        rate = float(match.group(1))
    else:
        raise _invalid(f"prosody rate {value!r} is not a word (x-slow..x-fast), a percentage "
                       "or a number", node.position)
    if not 0.25 <= rate <= 4.0:
        raise _invalid("prosody rate must be between 25% and 400%", node.position)
    return rate


# Streamed SSML (realtime sessions) ---------------------------------------------------------

_STREAM_TAG = re.compile(
    r"<!--.*?-->|<\?.*?\?>|<(/?)([A-Za-z_][\w:.-]*)((?:\"[^\"]*\"|'[^']*'|[^'\"<>])*?)(/?)>",
    re.S)


def ssml_safe_cut(buffer: str, anywhere: bool = False) -> int | None:
    """Where a streamed SSML buffer may be cut into a segment to speak now: right after the
    first top-level <break/>, closing </s> or </p>, or </speak> (a break is a natural place to
    start speaking, and a sentence is the unit prosody needs). With `anywhere` (a flush), the
    last place between whole top-level elements. None while there is no such place yet.

    A session appends each delta to its buffer and, when this returns a cut, speaks
    `split_ssml_stream`'s complete document and keeps the rest: a segment never ends inside
    an element. A segment holding only punctuation (the "." after an element) raises
    NoSpeakableText: skip it. At the end of input, the session speaks whatever is left
    (closing it with </speak> if need be).
    """
    depth, cut = 0, None
    for match in _STREAM_TAG.finditer(buffer):
        closing, name, _, empty = match.groups()
        if name is None:
            continue  # a comment or processing instruction
        local = name.rpartition(":")[2]
        if closing:
            depth -= 1
            if depth <= 1 and (anywhere or depth == 0 or local in ("s", "p")):
                cut = match.end()
        elif empty:
            if depth == 1 and local == "break":
                cut = match.end()
        else:
            depth += 1
        if cut is not None and not anywhere:
            return cut
    return cut


def split_ssml_stream(buffer: str, anywhere: bool = False) -> tuple[str, str] | None:
    """(a complete document to speak now, the buffer to keep) at `ssml_safe_cut`, or None.

    The document is the buffer up to the cut, closed with </speak>; the kept buffer reopens
    with the same <speak ...> tag (its namespace and xml:lang carry over). Span offsets of the
    kept part's document are shifted by `len(buffer) - len(kept)` relative to the stream.
    """
    opening = next((m for m in _STREAM_TAG.finditer(buffer)
                    if m.group(2) and m.group(2).rpartition(":")[2] == "speak"), None)
    cut = ssml_safe_cut(buffer, anywhere)
    if opening is None or opening.group(1) or cut is None or cut <= opening.end():
        return None
    head = buffer[:cut]
    if buffer[:cut].rstrip().endswith("</speak>") or "</speak>" in head[opening.end():]:
        return head, buffer[cut:]
    return head + "</speak>", opening.group() + buffer[cut:]
