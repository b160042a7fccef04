"""Time to first audio with and without the text front end, through the whole request path
(issue 17): Piper in-process behind the app factory, `POST /tts_stream`, phrase cache off.

    .venv/bin/python bench/frontend_ttfa.py [--rounds 15]

For each round every text is requested with `normalize` on and off, in alternating order, so
the two are measured side by side. Prints p50/p95 of the time to the first audio byte, per text
kind, and the added p50. Targets on the 2-core CPU: plain +<= 1 ms p50, numeric +<= 30 ms p50.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from frontend import NUMERIC  # noqa: E402

from voxline.engines.piper_engine import PiperEngine  # noqa: E402
from voxline.server.app import create_app  # noqa: E402
from voxline.synthesis.plan import plan_request  # noqa: E402
from voxline.synthesis.request import parse_request  # noqa: E402


def plain_texts(limit: int) -> list[str]:
    texts = json.loads((ROOT / "bench" / "texts" / "v1.json").read_text())["texts"]
    english = [t["text"] for t in texts if t["language"] == "en" and t["workload"] != "long"]
    return [t for t in english if not any(c.isdigit() for c in t)][:limit]


def first_audio_ms(client, text: str, normalize: bool) -> float:
    started = time.perf_counter()
    response = client.post("/tts_stream", json={"text": text, "format": "pcm", "cache": False,
                                                "normalize": normalize}, buffered=False)
    assert response.status_code == 200, response.get_data()
    body = iter(response.response)
    next(chunk for chunk in body if chunk)
    elapsed = (time.perf_counter() - started) * 1000
    response.close()
    return elapsed


def wait_idle(scheduler, timeout_s: float = 30.0) -> None:
    """Until the closed request's render has stopped: each measurement runs alone (a render
    still going would take the cores from the next parse and plan)."""
    deadline = time.monotonic() + timeout_s
    while scheduler.busy and time.monotonic() < deadline:
        time.sleep(0.005)


def plan_ms(services, text: str, normalize: bool) -> float:
    """The part of a request's time to first audio that the front end changes: parse and plan
    (everything before the request reaches the scheduler)."""
    started = time.perf_counter()
    request = parse_request({"text": text, "normalize": normalize}, from_query=False,
                            max_chars=services.settings.max_chars, defaults=services.defaults)
    plan_request(services, request, "pcm")
    return (time.perf_counter() - started) * 1000


def report(title: str, kinds, times) -> None:
    print(title)
    print(f"{'texts':8} {'front end':10} {'p50':>8} {'p95':>8}")
    for kind in kinds:
        p50 = {}
        for normalize in (False, True):
            values = sorted(times[kind, normalize])
            p50[normalize] = statistics.median(values)
            p95 = values[int(0.95 * (len(values) - 1))]
            label = "on" if normalize else "off"
            print(f"{kind:8} {label:10} {p50[normalize]:8.2f} {p95:8.2f}")
        print(f"{kind:8} {'added p50':10} {p50[True] - p50[False]:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--normalize-processes", type=int, default=None, metavar="N",
                        help="VOXLINE_NORMALIZE_PROCESSES for the app (default: the setting's "
                        "default, 2; 0 runs the grammar in this process)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="frontend-ttfa-"))
    processes = ({} if args.normalize_processes is None
                 else {"normalize_processes": args.normalize_processes})
    app = create_app({"engine": PiperEngine(), "background": False,
                      "settings": {"speakers_dir": folder / "speakers", "cache_dir": folder,
                                   "lexicons_dir": folder / "lexicons", "warmup": True,
                                   "phrase_cache_mb": 0, **processes}})
    client = app.test_client()
    kinds = {"plain": plain_texts(len(NUMERIC)), "numeric": NUMERIC}
    times = {(k, n): [] for k in kinds for n in (False, True)}
    plans = {(k, n): [] for k in kinds for n in (False, True)}
    for round_ in range(args.rounds):
        for kind, texts in kinds.items():
            for i, text in enumerate(texts):
                order = (True, False) if (round_ + i) % 2 else (False, True)
                for normalize in order:
                    plans[kind, normalize].append(plan_ms(app.services, text, normalize))
                    times[kind, normalize].append(first_audio_ms(client, text, normalize))
                    wait_idle(app.services.scheduler)
    report(f"parse + plan (before the scheduler), {args.rounds} rounds x {len(NUMERIC)} texts "
           "per kind (ms)", kinds, plans)
    report("time to first audio through the route, Piper in-process (ms); Piper renders a "
           "first clause first, so a normalised text with an early comma can start sooner",
           kinds, times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
