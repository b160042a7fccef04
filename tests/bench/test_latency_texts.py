"""The fixed text set and the text → GPT length estimate."""

import pytest
from latencylib.texts import (
    GPT_TOKENS_PER_SECOND,
    WORKLOADS,
    estimate_gpt_tokens,
    estimate_speech_seconds,
    forced_tokens_per_call,
    load_text_set,
    split_sentences,
)

# XTTS's per-language sentence limits (coqui-tts tokenizer char_limits) for the set's languages.
XTTS_CHAR_LIMITS = {"en": 250, "de": 253, "fr": 273, "es": 239}


def test_v1_has_every_workload_and_some_non_english_lines():
    ts = load_text_set("v1")
    assert ts.version == "v1"
    for w in WORKLOADS:
        assert ts.select(w, {"en"}), w
        assert any(t.language != "en" for t in ts.select(w)), w
    assert set(ts.languages()) == set(XTTS_CHAR_LIMITS)


def test_v1_workload_shapes():
    ts = load_text_set("v1")
    for t in ts.select("short"):
        assert 5 <= len(t.text.split()) <= 15, t.id
    for t in ts.select("medium"):
        assert 2 <= sum(t.text.count(c) for c in ".?!") <= 3, t.id
    for t in ts.select("long"):
        assert len(t.text) > 200, t.id


def test_every_text_fits_one_xtts_generation():
    # Longer texts would be split by the server, and a forced length would apply to each part.
    for t in load_text_set("v1").texts:
        assert len(t.text) <= XTTS_CHAR_LIMITS[t.language], t.id


def test_token_estimate():
    assert GPT_TOKENS_PER_SECOND == pytest.approx(21.53, abs=0.01)
    text = "x" * 140  # 10 s of English
    assert estimate_speech_seconds(text, "en") == 10.0
    assert estimate_gpt_tokens(text, "en") == 216
    assert estimate_gpt_tokens(text, "en", cap=37) == 37
    assert estimate_gpt_tokens("", "en") == 1


def test_forced_length_is_spread_over_the_sentences_the_server_makes():
    one = "x" * 139 + "."  # 10 s of English, one sentence
    assert forced_tokens_per_call(one, "en") == (215, 1)
    three = "I found two orders. The first one shipped. The second is still being packed."
    tokens, count = forced_tokens_per_call(three, "en")
    assert count == len(split_sentences(three, "en")) == 3
    assert tokens * count == pytest.approx(estimate_gpt_tokens(three, "en"), abs=count)
    assert forced_tokens_per_call(three, "en", cap=5) == (5, 3)


def _checkpoint(tmp_path, layers, channels, merges):
    import json

    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_args": {
                    "gpt_layers": layers,
                    "gpt_n_model_channels": channels,
                    "gpt_max_audio_tokens": 605,
                }
            }
        )
    )
    (tmp_path / "vocab.json").write_text(json.dumps({"model": {"type": "BPE", "merges": merges}}))
    return tmp_path


def test_checkpoint_description_and_model_label(tmp_path):
    from latencylib.environment import PROXY_LABEL, REAL_LABEL, describe_checkpoint, model_label

    proxy = describe_checkpoint(_checkpoint(tmp_path, 30, 1024, []))
    assert proxy["v2_architecture"] and proxy["random_weights"]
    assert proxy["max_new_tokens"] == 602
    assert model_label("xtts", proxy) == PROXY_LABEL
    assert model_label("xtts", proxy, weights="real") == REAL_LABEL

    real = describe_checkpoint(_checkpoint(tmp_path, 30, 1024, ["t h", "th e"]))
    assert real["random_weights"] is False and model_label("xtts", real) == REAL_LABEL

    tiny = describe_checkpoint(_checkpoint(tmp_path, 2, 64, []))
    label = model_label("xtts", tiny)
    assert "tiny" in label and "not a latency proxy" in label

    assert model_label("xtts", None) == "xtts (weights not identified)"
    assert model_label("xtts", None, weights="proxy") == PROXY_LABEL
    assert model_label("piper", None) == "piper"
    assert describe_checkpoint(tmp_path / "missing") is None
