"""Mutated session messages for the websocket fuzz test: each a frame to send (str: a text
frame, bytes: a binary frame), the kind of mutation, and whether it must be refused.

Every kind is built from the five valid client messages, seeded, so a failure names the kind
and the run can be repeated exactly.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CONTEXTS = ("default", "c1", "c2")
MAX_DEPTH = 20_000
SETTINGS = {
    "voice": "tone-a",
    "language": "en",
    "format": "pcm",
    "sample_rate": 24000,
    "speed": 1.0,
    "max_buffer_delay_ms": 400,
    "temperature": 0.75,
    "top_k": 50,
}
# Values of the wrong type (or an edge of the right one) for any field.
CONFUSIONS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    2**63,
    -(2**63),
    1e308,
    "",
    " ",
    "x" * 300,
    "\ud800",
    "tone-a\u0000",
    [],
    {},
    [1, "a"],
    {"a": 1},
    {"type": "session.update"},
]


@dataclass(frozen=True)
class Mutation:
    frame: str | bytes
    kind: str
    must_refuse: bool  # an `error` is the only right answer (not JSON, not an object, ...)


def valid_messages(rng: random.Random) -> list[dict[str, Any]]:
    context = rng.choice(CONTEXTS)
    settings = dict(rng.sample(sorted(SETTINGS.items()), rng.randint(1, len(SETTINGS))))
    return [
        {"type": "session.update", "session": settings},
        {
            "type": "input_text.append",
            "context_id": context,
            "text": rng.choice(
                ["Hello", " there.", " Your order has shipped!", "…", "", "1, 2, 3"]
            ),
        },
        {"type": "input_text.flush", "context_id": context},
        {"type": "input_text.end", "context_id": context},
        {"type": "context.cancel", "context_id": context},
    ]


def _paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every field path of a message (dict keys, nested)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))


def _replace(message: dict, path: tuple, new: Any) -> dict:
    copy = json.loads(json.dumps(message))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def _dump(message: Any) -> str:
    # allow_nan: Infinity and NaN literals are what a hostile client may send.
    return json.dumps(message, ensure_ascii=True, allow_nan=True)


def truncated(rng: random.Random) -> Mutation:
    text = _dump(rng.choice(valid_messages(rng)))
    return Mutation(text[: rng.randrange(len(text))], "truncated JSON", True)


def type_confusion(rng: random.Random) -> Mutation:
    message = rng.choice(valid_messages(rng))
    path = rng.choice(list(_paths(message)))
    return Mutation(
        _dump(_replace(message, path, rng.choice(CONFUSIONS))),
        f"type confusion in {'.'.join(path)}",
        False,
    )


def missing_field(rng: random.Random) -> Mutation:
    message = rng.choice(valid_messages(rng))
    path = rng.choice(list(_paths(message)))
    copy = _replace(message, path, None)
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return Mutation(_dump(copy), f"missing {'.'.join(path)}", False)


def nesting(rng: random.Random) -> Mutation:
    """10 to 20,000 levels of lists or objects, in a field or as the whole message."""
    depth = min(MAX_DEPTH, round(10 ** rng.uniform(1, math.log10(MAX_DEPTH))))
    opening, closing = rng.choice([("[", "]"), ('{"a":', "}")])
    deep = opening * depth + "1" + closing * depth
    message = rng.choice(valid_messages(rng))
    path = rng.choice([(), *_paths(message)])
    if not path:
        return Mutation(deep, f"nesting {depth} as the message", True)
    placeholder = "\u2603PLACEHOLDER\u2603"
    text = _dump(_replace(message, path, placeholder)).replace(_dump(placeholder), deep)
    return Mutation(text, f"nesting {depth} in {'.'.join(path)}", False)


def escapes(rng: random.Random) -> Mutation:
    """Strings written with escapes: lone and paired surrogates, NUL, controls, and broken
    escapes (invalid JSON)."""
    good = [
        "\\ud800",
        "\\udfff",
        "\\ud800\\u0041",
        "\\ud83d\\ude00",
        "\\u0000",
        "\\n\\t\\r",
        "\\\\",
        "\\/",
        "\\u202e",
        "\\ufeff",
        "\\ud800\\ud800",
    ]
    bad = ["\\x41", "\\u12", "\\ud8", "\\", "\\U0001F600", "\t"]
    escape = rng.choice(good + bad)
    message = rng.choice(valid_messages(rng))
    path = rng.choice(list(_paths(message)))
    placeholder = "PLACEHOLDER"
    text = _dump(_replace(message, path, placeholder)).replace(placeholder, escape)
    return Mutation(text, f"escape {escape!r} in {'.'.join(path)}", escape in bad)


def huge_numbers(rng: random.Random) -> Mutation:
    literal = rng.choice(
        [
            "1e309",
            "-1e309",
            "1e-400",
            "NaN",
            "Infinity",
            "-Infinity",
            "9" * 400,
            "9" * 5000,
            "-0",
            "1.0e+308",
            "123456789012345678901234567890",
            "0x10",
            "01",
            "1.",
            ".5",
            "+1",
        ]
    )
    message = rng.choice(valid_messages(rng))
    path = rng.choice(list(_paths(message)))
    placeholder = "PLACEHOLDER"
    text = _dump(_replace(message, path, placeholder)).replace(f'"{placeholder}"', literal)
    invalid_json = literal in ("0x10", "01", "1.", ".5", "+1")
    return Mutation(text, f"number {literal[:12]} in {'.'.join(path)}", invalid_json)


def glued(rng: random.Random) -> Mutation:
    parts = [_dump(m) for m in rng.sample(valid_messages(rng), rng.randint(2, 3))]
    return Mutation(rng.choice(["", " ", "\n", ","]).join(parts), "messages glued", True)


def binary(rng: random.Random) -> Mutation:
    if rng.random() < 0.5:
        return Mutation(_dump(rng.choice(valid_messages(rng))).encode(), "binary JSON", True)
    return Mutation(rng.randbytes(rng.randint(0, 64)), "binary bytes", True)


def not_an_object(rng: random.Random) -> Mutation:
    frame = rng.choice(
        [
            "",
            " ",
            "null",
            "[]",
            "1",
            '"session.update"',
            "true",
            "[{}]",
            '{"type": "nope"}',
            "{}",
            '{"type": null}',
            '{"TYPE": "session.update"}',
        ]
    )
    return Mutation(frame, f"not a message: {frame!r}", True)


KINDS: list[Callable[[random.Random], Mutation]] = [
    truncated,
    type_confusion,
    type_confusion,
    missing_field,
    nesting,
    nesting,
    escapes,
    huge_numbers,
    glued,
    binary,
    not_an_object,
]


def mutations(seed: int, count: int) -> Iterator[Mutation]:
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.choice(KINDS)(rng)
