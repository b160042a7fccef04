"""Compile normalisation grammars ahead of serving (setup scripts, CI):

    python -m voxline.synthesis.frontend.prepare --languages en,es --cache-dir DIR

Already compiled languages are skipped; prints one line per language with its time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from voxline.synthesis.frontend.grammar import (
    DEFAULT_LANGUAGES,
    GRAMMAR_LANGUAGES,
    compile_grammar,
    grammar_language,
    is_compiled,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", default="en",
                        help=f"comma-separated, 'default' ({','.join(DEFAULT_LANGUAGES)}) "
                             f"or 'all' ({','.join(GRAMMAR_LANGUAGES)})")
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--nice", type=int, default=0,
                        help="lower this process's CPU priority (a server compiling in the "
                             "background passes 10)")
    args = parser.parse_args(argv)
    if args.nice:
        os.nice(args.nice)
    languages = GRAMMAR_LANGUAGES if args.languages == "all" else DEFAULT_LANGUAGES if (
        args.languages == "default") else [
        grammar_language(x) for x in args.languages.split(",") if x.strip()]
    failed = 0
    for language in languages:
        if language not in GRAMMAR_LANGUAGES:
            print(f"{language}: no grammar in nemo-text-processing, skipped")
            continue
        if is_compiled(args.cache_dir, language):
            print(f"{language}: already compiled")
            continue
        started = time.perf_counter()
        try:
            compile_grammar(args.cache_dir, language)
        except Exception as exc:  # report every language, fail at the end
            print(f"{language}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{language}: compiled in {time.perf_counter() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
