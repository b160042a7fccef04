"""Front-end cost per text: plain agent replies vs number-heavy ones (issue 17).

    .venv/bin/python bench/frontend.py [--cache-dir DIR] [--rounds 20]

Plain texts are the English replies of bench/texts/v1.json; numeric ones are replies full of
amounts, dates, times, phone numbers and codes. Prints p50/p95 in ms per text for the whole
front end (FrontEnd.process) and, for comparison, NeMo's own `normalize` on the same text.
Targets on the 2-core CPU: plain +<= 1 ms p50, numeric +<= 30 ms p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voxline.synthesis.frontend import FrontEnd, LexiconStore, Normalizers  # noqa: E402

NUMERIC = [
    "Your balance is $1,249.50 and the next payment of $45.10 is due on 12/03/2026.",
    "Please call us back at 555-0142 between 9 am and 5:30 pm, Monday to Friday.",
    "Your confirmation code is K7-42B, and your booking reference is AB12CD.",
    "The package weighs 2.5kg, costs €30 to ship, and should arrive on Dec. 3, 2026.",
    "I can offer 15% off, which brings the total down to $212.50 for 3 months.",
    "Our office is at 221B Baker St., apt. 4, and we open at 8:30am on weekdays.",
    "Your flight BA2490 leaves at 14:45 from gate B22; please be there by 2 pm.",
    "You have used 3.5 GB of your 10 GB plan, and 1,024 minutes of calls this month.",
    "The refund of $89.99 was issued on 11/28/2026 and takes 3 to 5 business days.",
    "Dial +1 800 555 0142 and enter your 6 digit PIN, then press # to confirm.",
    "Order #12345 shipped on the 21st; it is 1 of 2 parcels, the other ships on the 23rd.",
    "The temperature will drop to -5°C tonight with winds of 60 km/h after 11 pm.",
]


def plain_texts() -> list[str]:
    data = json.loads((ROOT / "bench" / "texts" / "v1.json").read_text())
    return [t["text"] for t in data["texts"] if t["language"] == "en"]


def timings(call, texts: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (this thread's) milliseconds per call: on a shared machine the CPU
    figure is the one that says what the work costs."""
    for text in texts:  # warm up
        call(text)
    wall, cpu = [], []
    for _ in range(rounds):
        for text in texts:
            started, started_cpu = time.perf_counter(), time.thread_time()
            call(text)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
    return wall, cpu


def line(name: str, samples: tuple[list[float], list[float]]) -> str:
    wall, cpu = samples
    p95 = statistics.quantiles(wall, n=20)[18]
    cpu95 = statistics.quantiles(cpu, n=20)[18]
    return (f"{name:36} wall p50 {statistics.median(wall):8.3f} p95 {p95:8.3f} ms | "
            f"cpu p50 {statistics.median(cpu):8.3f} p95 {cpu95:8.3f} ms (n={len(wall)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("VOXLINE_CACHE_DIR", "/var/cache/voxline")) / "frontend"
    parser.add_argument("--cache-dir", type=Path, default=default)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    normalizers = Normalizers(args.cache_dir)
    started = time.perf_counter()
    normalizers.prepare(["en"], background=False)
    print(f"English grammar: {normalizers.status()['en']} in "
          f"{time.perf_counter() - started:.2f} s (load, or compile + load)")
    front_end = FrontEnd(normalizers, LexiconStore())
    grammar = normalizers.get("en")
    assert grammar is not None

    def process(text: str) -> None:
        front_end.process(text, language="en")

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, texts in (("plain", plain_texts()), ("numeric", NUMERIC)):
        print(line(f"{name}: front end", timings(process, texts, args.rounds)))
        print(line(f"{name}: NeMo normalize, whole text", timings(
            grammar.normalize, texts, max(1, args.rounds // 4))))


if __name__ == "__main__":
    main()
