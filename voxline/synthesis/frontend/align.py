"""Map a normaliser's output words back to the input words they came from."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from voxline.synthesis.frontend.words import Word

_NOT_ALNUM = re.compile(r"[\W_]+")


def _key(text: str) -> str:
    return _NOT_ALNUM.sub("", text.casefold())


def align(inputs: list[Word], output: str) -> list[Word]:
    """Output words of a normaliser, each with the source range of the input words it rewrote.

    Words the normaliser left alone line up one to one; each changed stretch of output maps to
    the whole stretch of input it replaced ("$1,249.50" -> six words, each with its span);
    output with no input counterpart joins its neighbour's span.
    """
    out_texts = output.split()
    if not inputs:
        return []
    matcher = SequenceMatcher(None, [_key(w.text) for w in inputs],
                              [_key(t) for t in out_texts], autojunk=False)
    words: list[Word] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            words += [Word(out_texts[j1 + k], inputs[i1 + k].src_start, inputs[i1 + k].src_end)
                      for k in range(i2 - i1)]
        elif op == "replace":
            start, end = inputs[i1].src_start, inputs[i2 - 1].src_end
            words += [Word(t, start, end) for t in out_texts[j1:j2]]
        elif op == "insert":
            anchor = inputs[min(i1, len(inputs) - 1)] if not words else None
            start, end = (anchor.src_start, anchor.src_end) if anchor else (
                words[-1].src_start, words[-1].src_end)
            words += [Word(t, start, end) for t in out_texts[j1:j2]]
    return words
