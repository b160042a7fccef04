"""The `voxline` command: `voxline say "Hello" -o hello.wav`, `voxline voices`.

Without `-o` (or with `-o -`) audio goes to stdout while it is generated, for a player:
`voxline say "Hello" --format wav | ffplay -nodisp -autoexit -`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from voxline_client.client import (
    DEFAULT_URL,
    FORMAT_BY_SUFFIX,
    VoxlineClient,
    VoxlineError,
    write_stream,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxline", description="Talk to a Voxline server.")
    parser.add_argument("--url", default=os.environ.get("VOXLINE_URL", DEFAULT_URL),
                        help="server address (env VOXLINE_URL; default %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("VOXLINE_API_KEY"),
                        help="bearer key (env VOXLINE_API_KEY)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to connect and for each read (default %(default)s)")
    parser.add_argument("--retries", type=int, default=3,
                        help="retries when the server is unreachable or busy")
    commands = parser.add_subparsers(dest="command", required=True)
    say = commands.add_parser("say", help="speak a text (use - to read it from stdin)")
    say.add_argument("text")
    say.add_argument("-o", "--output", default="-",
                     help="file to write, or - for stdout (the default)")
    say.add_argument("--voice", help="voice name (default: the server's default voice)")
    say.add_argument("--format", help="wav, mp3, opus, flac, aac, pcm, l16, ulaw, alaw "
                                      "(default: from the file suffix, else wav)")
    say.add_argument("--sample-rate", type=int, help="output rate in Hz")
    say.add_argument("--language", help="language code, e.g. en, de")
    say.add_argument("--speed", type=float, help="0.25 to 4")
    say.add_argument("--no-cache", action="store_true", help="skip the server's phrase cache")
    commands.add_parser("voices", help="list the server's voices")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = VoxlineClient(args.url, api_key=args.api_key, timeout=args.timeout,
                           retries=args.retries)
    try:
        if args.command == "voices":
            print(json.dumps(client.voices(), indent=2))
            return 0
        return _say(client, args)
    except VoxlineError as exc:
        print(f"voxline: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the player went away
        return 0


def _say(client: VoxlineClient, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    to_stdout = args.output == "-"
    fmt = args.format or ("wav" if to_stdout else
                          FORMAT_BY_SUFFIX.get(Path(args.output).suffix.lower(), "wav"))
    if to_stdout and sys.stdout.isatty():
        print("voxline: not writing audio to a terminal; use -o FILE or a pipe",
              file=sys.stderr)
        return 2
    fields = {"voice": args.voice, "sample_rate": args.sample_rate, "language": args.language,
              "speed": args.speed, "cache": False if args.no_cache else None}
    with client.stream(text, format=fmt, **fields) as audio:
        if to_stdout:
            write_stream(audio, sys.stdout.buffer, fmt)
        else:
            with open(args.output, "w+b") as out:
                write_stream(audio, out, fmt)
            print(f"{args.output}: {fmt}, voice {audio.voice}, {audio.sample_rate} Hz",
                  file=sys.stderr)
    return 0
