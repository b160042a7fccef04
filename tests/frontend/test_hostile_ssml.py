"""Hostile SSML: rejected with a 4xx-class domain error, quickly, with nothing read.

An audit hook records every file open and socket connection made while a document is parsed.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

from voxline.synthesis.errors import InvalidRequest, TooLarge

_watching = threading.local()


def _audit(event: str, args: tuple) -> None:
    seen = getattr(_watching, "events", None)
    if seen is not None and event in ("open", "socket.connect", "urllib.Request", "os.listdir"):
        seen.append((event, args[0] if args else None))


sys.addaudithook(_audit)


def rejected(front_end, document: str, error=InvalidRequest):
    """The error raised for `document`, after checking it came fast and read nothing."""
    _watching.events = []
    started = time.perf_counter()
    try:
        with pytest.raises(error) as caught:
            front_end.process(document, language="en", text_type="ssml", phonemes=True)
    finally:
        events, _watching.events = _watching.events, None
    assert time.perf_counter() - started < 1.0
    assert events == []
    return caught.value


def test_external_entity_is_refused(front_end, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    doc = (f'<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY x SYSTEM "file://{secret}">]>'
           "<speak>&x;</speak>")
    caught = rejected(front_end, doc)
    assert caught.code == "invalid_ssml" and "line 1" in caught.message


@pytest.mark.parametrize("doc", [
    # billion laughs
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    .replace("&lol0;", "&lol;")
    + "]><speak>&lol9;</speak>",
    # external DTD
    '<?xml version="1.0"?><!DOCTYPE speak SYSTEM "http://127.0.0.1:9/speak.dtd"><speak>hi</speak>',
    # parameter entity pulling a file
    '<!DOCTYPE speak [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><speak>hi</speak>',
    # XInclude
    '<speak xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd"/></speak>',
])
def test_dtds_entities_and_includes_are_refused(front_end, doc):
    assert rejected(front_end, doc).code in ("invalid_ssml", "unsupported_ssml")


@pytest.mark.parametrize("tag", ["s", "prosody", "unknown"])
def test_deep_nesting_is_refused(front_end, tag):
    doc = "<speak>" + f"<{tag}>" * 5_000 + "x" + f"</{tag}>" * 5_000 + "</speak>"
    caught = rejected(front_end, doc)
    assert caught.code == "invalid_ssml" and "nest deeper" in caught.message


def test_nesting_100k_deep_is_refused_by_size_first(front_end):
    doc = "<speak>" + "<s>" * 100_000 + "x" + "</s>" * 100_000 + "</speak>"
    assert rejected(front_end, doc, TooLarge).code == "ssml_too_large"


def test_a_4_mb_document_is_too_large(front_end):
    doc = "<speak>" + "word " * (4 * 1024 * 1024 // 5) + "</speak>"
    assert rejected(front_end, doc, TooLarge).code == "ssml_too_large"


def test_the_audit_hook_does_see_reads(tmp_path):
    """The hook is live: an ordinary open is recorded (so the empty lists above mean nothing
    was read)."""
    _watching.events = []
    (tmp_path / "f").write_text("x")
    events, _watching.events = _watching.events, None
    assert any(e == "open" for e, _ in events)
