"""Sessions and the text front end: SSML streamed in small deltas is cut only between whole
elements or at a break, and every word's offsets slice the text as the client sent it."""

from __future__ import annotations

import random

import pytest

from tests.fakes import FakeEngine

SSML = ('<speak>Hello there.<break time="300ms"/>Your code is '
        '<say-as interpret-as="characters">K7</say-as>, due <say-as interpret-as="date" '
        'format="mdy">12/03/2026</say-as>.</speak>')


def send_in_deltas(client, text: str, seed: int = 7, context_id: str = "default") -> None:
    rng = random.Random(seed)
    position = 0
    while position < len(text):
        size = rng.randint(1, 4)
        client.send("input_text.append", text=text[position:position + size],
                    context_id=context_id)
        position += size
    client.send("input_text.end", context_id=context_id)


def test_ssml_deltas_are_cut_between_elements_and_at_breaks(serve):
    client = serve(FakeEngine(chunk_len=480)).connect()
    client.recv()
    client.send("session.update", session={"text_type": "ssml"})
    assert client.recv()["session"]["text_type"] == "ssml"
    send_in_deltas(client, SSML)
    messages = client.until("speech.audio.done")
    assert [m for m in messages if m["type"] == "error"] == []
    segments = [m["text"] for m in messages if m["type"] == "speech.segment"]
    assert segments[0] == '<speak>Hello there.<break time="300ms"/></speak>'
    for text in segments:
        assert text.startswith("<speak") and text.endswith("</speak>")
        assert text.count("<say-as") == text.count("</say-as>")


def test_words_slice_the_text_as_sent_in_small_deltas(serve):
    client = serve(FakeEngine(chunk_len=4800)).connect()
    client.recv()
    text = "Your balance is $1,249.50 today. Please call 555-0142 before Friday."
    send_in_deltas(client, text)
    done = client.until("speech.audio.done")[-1]
    words = done["words"]
    assert words, "a session sends word timings by default"
    assert [w["start_ms"] for w in words] == sorted(w["start_ms"] for w in words)
    for word in words:
        source = text[word["text_start"]:word["text_end"]]
        assert source.strip() and source in text
        assert word["end_ms"] <= done["audio_ms"] + 0.1
    sources = [text[w["text_start"]:w["text_end"]] for w in words]
    assert "$1,249.50" in sources and "555-0142" in sources and sources[0] == "Your"


def test_ssml_words_slice_the_document(serve):
    client = serve(FakeEngine(chunk_len=4800)).connect()
    client.recv()
    client.send("session.update", session={"text_type": "ssml"})
    client.recv()
    send_in_deltas(client, SSML, seed=3)
    words = client.until("speech.audio.done")[-1]["words"]
    sources = [SSML[w["text_start"]:w["text_end"]] for w in words]
    assert sources[:2] == ["Hello", "there."]
    # A spelled code maps each character to its own source character; a date maps each of
    # its spoken words to the whole date.
    assert sources[5:7] == ["K", "7"] and "12/03/2026" in sources


@pytest.mark.parametrize("deltas", [1, 2, 3, 5, 8])
def test_cancel_at_random_points_reports_only_words_heard(serve, deltas):
    engine = FakeEngine(n_chunks=6, chunk_len=4800)
    engine.delay_s = 0.02
    client = serve(engine).connect()
    client.recv()
    text = "One two three four five six seven eight. Nine ten eleven twelve. Thirteen."
    client.send("input_text.append", text=text)
    client.send("input_text.end")
    for _ in range(deltas):  # cancel after a varying amount of audio
        client.until("speech.audio.delta")
    client.send("context.cancel")
    ack = client.until("context.cancelled")[-1]
    assert all(w["end_ms"] <= ack["audio_ms"] for w in ack["words"])
    assert text.startswith(ack["heard_text"])
    if ack["words"]:
        last = ack["words"][-1]
        assert ack["heard_text"] == text[:last["text_end"]]


def test_a_client_that_says_how_much_it_played_gets_the_words_it_played(serve):
    engine = FakeEngine(n_chunks=4, chunk_len=12000)
    engine.delay_s = 0.2  # the second sentence is still being made when the client cancels
    client = serve(engine).connect()
    client.recv()
    text = "One two three four five six seven eight nine ten. Eleven twelve thirteen."
    client.send("input_text.append", text=text)
    client.send("input_text.end")
    client.until("speech.words")  # all of this sentence's words: the audio is all sent
    client.send("context.cancel", played_ms=500)
    ack = client.until("context.cancelled")[-1]
    assert ack["audio_ms"] > 500
    assert ack["words"] and all(w["end_ms"] <= 500 for w in ack["words"])
    assert text.startswith(ack["heard_text"]) and len(ack["heard_text"]) < len(text)
    client.send("context.cancel", played_ms=-1)
    assert client.recv()["error"]["code"] == "invalid_parameter"
