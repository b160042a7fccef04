"""Grammars in child processes (what servers run): the same spoken text as in-process, a
text's windows shared out, and a dead child replaced without failing a request."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import grammar_cache
from test_english import CASES

from voxline.synthesis.frontend import FrontEnd, LexiconStore, Normalizers
from voxline.synthesis.frontend.grammar import Grammar, cache_root, whitelist_words
from voxline.synthesis.frontend.grammar_processes import GrammarProcesses

NUMERIC = "Pay $1,249.50 by 12/03/2026, call 555-0142 at 5:30 pm, or visit 221B Baker St."


@pytest.fixture(scope="module")
def in_children(tmp_path_factory):
    """An English front end whose grammar runs in two child processes (as servers run it)."""
    normalizers = Normalizers(grammar_cache(), processes=2)
    normalizers.prepare(["en"], background=False)
    assert normalizers.status()["en"] == "ready"
    return FrontEnd(normalizers, LexiconStore(tmp_path_factory.mktemp("lexicons")))


@pytest.mark.parametrize(("text", "spoken"), CASES, ids=[c[0] for c in CASES])
def test_children_say_what_the_table_says(in_children, text, spoken):
    assert in_children.process(text, language="en").text == spoken


def test_children_and_this_process_agree_on_a_number_heavy_text(in_children, front_end):
    ours = in_children.process(NUMERIC, language="en")
    assert ours == front_end.process(NUMERIC, language="en")
    assert "one thousand two hundred and forty nine dollars" in ours.text


def test_a_texts_windows_go_to_the_grammar_in_one_call(in_children):
    grammar = in_children.normalizers.get("en")
    calls = []
    original = grammar.normalize_many

    def spy(texts):
        calls.append(list(texts))
        return original(texts)

    grammar.normalize_many = spy
    try:
        in_children.process(NUMERIC, language="en")
    finally:
        del grammar.normalize_many
    # One call, so the children share the windows out; plain words that no class reads with
    # a number ("by", "call") are left out of them, "pm" is kept.
    assert calls == [["$1,249.50", "12/03/2026,", "5:30 pm,", "221B Baker"]]


def _children_of_this_process() -> set[int]:
    import multiprocessing

    return {p.pid for p in multiprocessing.active_children()}


def test_a_killed_child_is_replaced_and_no_request_fails(caplog):
    folder = str((cache_root(grammar_cache()) / "en").resolve())
    before = _children_of_this_process()
    backend = GrammarProcesses(folder, "en", 1)
    grammar = Grammar("en", backend, whitelist_words("en"))
    try:
        assert grammar.normalize("$5") == "five dollars"
        (child,) = _children_of_this_process() - before
        os.kill(child, signal.SIGKILL)
        time.sleep(0.5)
        assert grammar.normalize("$5") in ("$5", "five dollars")  # as written while restarting
        deadline = time.monotonic() + 120
        while grammar.normalize("$7") != "seven dollars":
            assert time.monotonic() < deadline, "the grammar process was not replaced"
            time.sleep(0.5)
    finally:
        backend.close()
    assert any("grammar process died" in r.message for r in caplog.records)


def test_children_end_when_the_server_is_killed(tmp_path):
    """A server killed with SIGKILL cannot stop its grammar processes: they end themselves."""
    import subprocess
    import sys

    script = tmp_path / "server.py"
    script.write_text(
        "import multiprocessing, sys, time\n"
        "from voxline.synthesis.frontend.grammar_processes import GrammarProcesses\n"
        "if __name__ == '__main__':\n"
        f"    GrammarProcesses({str((cache_root(grammar_cache()) / 'en').resolve())!r},"
        " 'en', 2)\n"
        "    print(' '.join(str(p.pid) for p in multiprocessing.active_children()"
        " if p.name.startswith('SpawnProcess')), flush=True)\n"
        "    time.sleep(120)\n")
    root = str(Path(__file__).resolve().parents[2])
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=root, env={**os.environ, "PYTHONPATH": root})
    try:
        children = [int(p) for p in server.stdout.readline().split()]
        assert len(children) == 2
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)
                  for pid in children):
            assert time.monotonic() < deadline, "grammar processes outlived their server"
            time.sleep(0.2)
    finally:
        server.kill()
        server.wait(10)
        server.stdout.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (FileNotFoundError, IndexError):
        return "zombie"
