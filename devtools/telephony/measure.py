"""Measure time to first audio on a real Asterisk 22 for the AGI, FastAGI and AudioSocket paths.

Run from the repository root as root: .venv/bin/python -m devtools.telephony.measure [--runs 5]
It starts the Voxline server (Piper engine), Asterisk from the sid chroot and a probe that plays
the caller, then prints a Markdown table (milliseconds: median, min, max).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from devtools.telephony.asterisk import Asterisk, prepare_chroot
from devtools.telephony.probe import Probe
from devtools.telephony.tts_server import TtsServer
from telephony.audiosocket.service import AudioSocketService
from telephony.fastagi import FastAgiServer
from telephony.voxagi.config import Settings

REPO = Path(__file__).resolve().parents[2]
TEST_DIALPLAN = REPO / "tests" / "telephony" / "voxline-test.conf"
PROMPTS = [
    "Thank you for calling Voxline. Please hold while we find your booking.",
    "Your parcel left our warehouse this morning. It should arrive on Thursday.",
    "I did not catch that. Could you say your account number again?",
    "Your appointment is confirmed for nine thirty. Is there anything else?",
    "Please say yes to continue, or no to speak to an agent.",
    "We have received your payment. A receipt is on its way by email.",
    "The next available slot is tomorrow at noon. Shall I book it for you?",
]
AUDIBLE = 64  # a sample above this (about -54 dBFS) counts as sound


class Bench:
    """Asterisk, the Voxline server, a FastAGI server, the AudioSocket service and a probe."""

    def __init__(self, work: Path) -> None:
        self.server = TtsServer(REPO, "piper", work / "gunicorn.log").wait_ready()
        self.asterisk = Asterisk(
            prepare_chroot(build=True), {"voxline-test.conf": TEST_DIALPLAN.read_text()}
        )
        self.asterisk.start()
        self.probe = Probe().serve()
        cache = str(self.asterisk.path("prompts", "measure"))
        self.settings = Settings(url=self.server.url, cache_dir=cache)
        self.fastagi = FastAgiServer(("127.0.0.1", 0), self.settings)
        threading.Thread(target=self.fastagi.serve_forever, daemon=True).start()
        self.audiosocket = AudioSocketService(self.settings, ("127.0.0.1", 0), ("127.0.0.1", 0))
        self.audiosocket.start()

    def close(self) -> None:
        """Stop everything."""
        self.audiosocket.stop()
        self.fastagi.stop(grace=1)
        self.probe.stop()
        self.asterisk.stop()
        self.server.stop()

    def agi_first_audio(self, callee: str, text: str) -> tuple[float, float]:
        """Seconds from entering the AGI to the first frame and to the first audible frame."""
        test_id, ear = uuid.uuid4().hex[:12], str(uuid.uuid4())
        variables = {
            "TEST_ID": test_id,
            "VOXLINE_TEXT": text,
            "VOXLINE_TTS_URL": self.server.url,
            "VOXLINE_TTS_CACHE_DIR": self.settings.cache_dir,
            "VOXLINE_FASTAGI": "{}:{}".format(*self.fastagi.server_address[:2]),
            "PROBE_ID": ear,
            "PROBE_ADDR": self.probe.address,
        }
        self.asterisk.originate(
            f"Local/{callee}@voxline-test-callee", "voxline-test-caller", "probe", variables
        )
        heard = self.probe.wait_call(ear)
        assert heard.ended.wait(60), "call did not end"
        entered = float(self.asterisk.wait_db("voxline-test", f"{test_id}-t0", 5))
        # Nothing flows before the prompt on this path: the first frame is the prompt's.
        audible = heard.first_sound(AUDIBLE)
        assert heard.frames and audible is not None, "nothing reached the caller"
        return heard.frames[0][0] - entered, audible - entered

    def audiosocket_first_audio(self, text: str) -> tuple[float, float]:
        """Seconds from a say request to the first non-silent and first audible frame."""
        callee, ear = str(uuid.uuid4()), str(uuid.uuid4())
        variables = {
            "TEST_ID": uuid.uuid4().hex[:12],
            "VOXLINE_CALL_ID": callee,
            "VOXLINE_AUDIOSOCKET": "{}:{}".format(*self.audiosocket.audio_address),
            "PROBE_ID": ear,
            "PROBE_ADDR": self.probe.address,
        }
        self.asterisk.originate(
            "Local/audiosocket@voxline-test-callee", "voxline-test-caller", "probe", variables
        )
        heard = self.probe.wait_call(ear)
        deadline = time.monotonic() + 10
        while self.audiosocket.registry.get(callee) is None:
            assert time.monotonic() < deadline, "AudioSocket call never connected"
            time.sleep(0.01)
        time.sleep(0.3)  # let the line settle: silence is flowing
        base = "http://{}:{}".format(*self.audiosocket.control_address)
        body = json.dumps({"text": text}).encode()
        request = urllib.request.Request(f"{base}/calls/{callee}/say", data=body, method="POST")
        said = time.time()
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        deadline = time.monotonic() + 30
        while (audible := heard.first_sound(AUDIBLE)) is None:
            assert time.monotonic() < deadline, "nothing audible reached the caller"
            time.sleep(0.01)
        heard.hang_up()
        first = heard.first_sound(0)
        assert first is not None
        return first - said, audible - said


def summary(values: list[float]) -> str:
    """Median (min-max) in milliseconds."""
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.0f} ({min(ms):.0f}–{max(ms):.0f})"


def main() -> None:
    """Run every path `--runs` times and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    prompts = PROMPTS[: args.runs]
    with tempfile.TemporaryDirectory() as work:
        bench = Bench(Path(work))
        try:
            # Warm the server once so that no row pays for the first request.
            bench.agi_first_audio("agi", "Warming up.")
            rows: dict[str, list[tuple[float, float]]] = {}
            for callee, label in (("agi", "AGI script"), ("fastagi", "FastAGI")):
                texts = [f"{label}: {t}" for t in prompts]
                rows[f"{label}, uncached"] = [bench.agi_first_audio(callee, t) for t in texts]
                rows[f"{label}, cached"] = [bench.agi_first_audio(callee, t) for t in texts]
            rows["AudioSocket, after say"] = [bench.audiosocket_first_audio(t) for t in prompts]
        finally:
            bench.close()
    print(f"ms, median (min–max) of {args.runs} calls\n")
    print("| path | first frame of the prompt | first audible frame (> -54 dBFS) |")
    print("| --- | --- | --- |")
    for label, values in rows.items():
        first = summary([v[0] for v in values])
        audible = summary([v[1] for v in values])
        print(f"| {label} | {first} | {audible} |")


if __name__ == "__main__":
    main()
