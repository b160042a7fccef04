"""Build a random-weight XTTS v2 checkpoint folder that coqui-tts's `load_checkpoint` accepts.

`--size full` is the published v2 architecture (467 M parameters): with the output length forced,
its per-token compute equals the real model's, so it is a latency proxy (never a quality one).
`--size tiny` is a 23 M-parameter model for tests.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
import time
from pathlib import Path

LANGUAGES = [
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko",
    "ja", "hi",
]

# Model arguments of the published XTTS v2 config.json (XttsArgs defaults are not v2).
FULL_ARGS = {
    "gpt_layers": 30, "gpt_n_model_channels": 1024, "gpt_n_heads": 16,
    "gpt_number_text_tokens": 6681, "gpt_max_audio_tokens": 605, "gpt_max_text_tokens": 402,
    "gpt_max_prompt_tokens": 70, "gpt_num_audio_tokens": 1026, "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025, "gpt_use_perceiver_resampler": True, "decoder_input_dim": 1024,
    "d_vector_dim": 512,
}
TINY_ARGS = {
    **FULL_ARGS, "gpt_layers": 2, "gpt_n_model_channels": 64, "gpt_n_heads": 2,
    "gpt_max_audio_tokens": 40, "decoder_input_dim": 64,
}
# Inference settings of the published v2 config.
V2_INFERENCE = {
    "temperature": 0.75, "length_penalty": 1.0, "repetition_penalty": 5.0, "top_k": 50,
    "top_p": 0.85, "gpt_cond_len": 30, "gpt_cond_chunk_len": 4, "max_ref_len": 30,
}


def build_vocab(size: int | None) -> dict:
    """A character-level BPE tokenizer in `tokenizers` JSON, padded to `size` tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]"] + [f"[{lang}]" for lang in LANGUAGES]
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation
                       + "àâäçéèêëîïôöùûüñßáíóúãõåøæœąćęłńśźżčďěňřšťůžğışı"))
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    while size is not None and len(vocab) < size:
        vocab[f"[PAD{len(vocab)}]"] = len(vocab)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(specials)
    return json.loads(tokenizer.to_str())


def build(size: str, out: Path, seed: int = 0, studio_speaker: bool = True) -> Path:
    """Write config.json, vocab.json, model.pth (and speakers_xtts.pth) into `out`."""
    import numpy as np
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out.mkdir(parents=True, exist_ok=True)
    args = dict(FULL_ARGS if size == "full" else TINY_ARGS)
    vocab = build_vocab(args["gpt_number_text_tokens"])
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = VoiceBpeTokenizer(vocab_file=str(out / "vocab.json"))
    args["gpt_number_text_tokens"] = tokenizer.get_number_tokens()

    config = XttsConfig()
    config.languages = list(LANGUAGES)
    for key, value in {**V2_INFERENCE}.items():
        setattr(config, key, value)
    for key, value in args.items():
        setattr(config.model_args, key, value)
    config.model_args.tokenizer_file = ""
    config.save_json(str(out / "config.json"))

    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = tokenizer
    model.init_models()
    torch.save({"model": model.state_dict()}, out / "model.pth")
    if studio_speaker:
        model.gpt.init_gpt_for_inference(kv_cache=True)
        model.eval()
        t = np.arange(22050 * 4) / 22050
        clip = torch.from_numpy((0.3 * np.sin(2 * np.pi * 220 * t)).astype("float32"))[None]
        entry = {
            "gpt_cond_latent": model.get_gpt_cond_latents(clip, 22050, length=30, chunk_length=4),
            "speaker_embedding": model.get_speaker_embedding(clip, 22050),
        }
        torch.save({"Studio Sine": entry}, out / "speakers_xtts.pth")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-studio-speaker", action="store_true")
    parser.add_argument("out", type=Path)
    opts = parser.parse_args(argv)
    start = time.perf_counter()
    build(opts.size, opts.out, opts.seed, studio_speaker=not opts.no_studio_speaker)
    size_mb = (opts.out / "model.pth").stat().st_size / 1e6
    print(f"built {opts.size} XTTS checkpoint in {opts.out} ({size_mb:.0f} MB, "
          f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
