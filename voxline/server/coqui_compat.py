"""Drop-in for coqui's xtts-streaming-server, which Pipecat's XTTSService calls unchanged.

- `GET /studio_speakers`: {name: {"speaker_embedding": [E], "gpt_cond_latent": [[D] * N]}}
  for every voice (built-in and cloned), as nested lists.
- `POST /tts_stream` with `speaker_embedding`, `gpt_cond_latent`, `text`, `language`,
  `add_wav_header` (default true) and `stream_chunk_size` (default 20): raw 24 kHz s16le, or a
  WAV header first. Voxline's own /tts_stream has no latent fields, which tells the two apart.
- `POST /clone_speaker` (multipart `wav_file`): the latents of an uploaded clip.

Only an engine whose voices are XTTS latents can take them; others answer 400 saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from flask import Blueprint, g, jsonify, request

from voxline.engines.base import Conditioning
from voxline.server.auth import SYNTHESIS, require_key
from voxline.server.body import Exchange, respond
from voxline.server.errors import bad_request
from voxline.server.flaskapp import app_services
from voxline.synthesis.plan import plan_request
from voxline.synthesis.request import parse_request
from voxline.synthesis.services import Services

logger = logging.getLogger(__name__)
bp = Blueprint("coqui", __name__)

LATENT_FIELDS = ("speaker_embedding", "gpt_cond_latent")
REQUEST_VOICE = "(request latents)"


def is_coqui_request(data: Mapping[str, Any]) -> bool:
    """A coqui xtts-streaming-server body carries the voice as latents."""
    return any(name in data for name in LATENT_FIELDS)


def latent_template(services: Services) -> Conditioning:
    """The shapes the engine's latents have (from a loaded voice); 400 if it has none."""
    bank = services.voices
    voice = bank.get(bank.default) if bank.default else None
    if voice is None or any(name not in voice for name in LATENT_FIELDS):
        raise bad_request("latents_unsupported",
                          f"the {services.engine_name} engine does not take XTTS latents "
                          "(speaker_embedding, gpt_cond_latent); use POST /tts_stream with "
                          "'speaker' naming a voice, or run the XTTS engine")
    return voice


def conditioning_from_lists(data: Mapping[str, Any], template: Conditioning) -> Conditioning:
    """Nested lists from a client as arrays shaped like the engine's own latents."""
    arrays = {}
    for name in LATENT_FIELDS:
        try:
            array = np.asarray(data.get(name), dtype=np.float32)
        except (TypeError, ValueError):
            array = np.zeros(0, dtype=np.float32)
        if array.size == 0 or not np.all(np.isfinite(array)):
            raise bad_request("invalid_latents", f"{name} must be a non-empty list of numbers",
                              param=name)
        arrays[name] = array
    embedding_shape = template["speaker_embedding"].shape
    if arrays["speaker_embedding"].size != int(np.prod(embedding_shape)):
        raise bad_request("invalid_latents",
                          f"speaker_embedding must have {int(np.prod(embedding_shape))} values",
                          param="speaker_embedding")
    # XTTS's conditioning latent always has the model's fixed number of rows (the perceiver
    # resampler's outputs): any other shape is not a latent this model made.
    rows, width = template["gpt_cond_latent"].shape[-2:]
    latent = arrays["gpt_cond_latent"]
    if latent.shape not in ((rows, width), (1, rows, width)):
        raise bad_request("invalid_latents",
                          f"gpt_cond_latent must be {rows} rows of {width} values",
                          param="gpt_cond_latent")
    return {
        "speaker_embedding": arrays["speaker_embedding"].reshape(embedding_shape),
        "gpt_cond_latent": latent.reshape(1, rows, width),
    }


def conditioning_to_lists(voice: Conditioning) -> dict[str, list]:
    """Latents as coqui sends them: the embedding flat, the GPT latent as rows."""
    latent = np.asarray(voice["gpt_cond_latent"], dtype=np.float32)
    return {
        "speaker_embedding": np.asarray(voice["speaker_embedding"]).reshape(-1).tolist(),
        "gpt_cond_latent": latent.reshape(-1, latent.shape[-1]).tolist(),
    }


def coqui_tts_stream(data: Mapping[str, Any]):
    """POST /tts_stream with latents: raw s16le at the engine's rate (24 kHz), or WAV."""
    svc = app_services()
    svc.require_ready()
    voice = conditioning_from_lists(data, latent_template(svc))
    header = data.get("add_wav_header", True)
    if not isinstance(header, bool):
        raise bad_request("invalid_parameter", "add_wav_header must be true or false",
                          param="add_wav_header")
    fields = {
        "text": data.get("text"),
        "language": data.get("language"),
        "format": "wav" if header else "pcm",
        "sample_rate": svc.engine.sample_rate,
        "stream_chunk_size": _chunk_size(data.get("stream_chunk_size", 20)),
    }
    if "cache" in data:
        fields["cache"] = data["cache"]
    req = parse_request(fields, from_query=False, max_chars=svc.settings.max_chars,
                        defaults=svc.defaults)
    plan = plan_request(svc, req, "pcm", voice=(REQUEST_VOICE, voice))
    return respond(svc, plan, Exchange.current("/tts_stream"))


def _chunk_size(value: Any) -> Any:
    """coqui's server took `stream_chunk_size` as a string ("20"); Pipecat sends a number."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


@bp.get("/studio_speakers")
@require_key(SYNTHESIS)
def studio_speakers():
    svc = app_services()
    svc.require_ready()
    latent_template(svc)
    voices = {name: svc.voices.get(name) for name in svc.voices.names()}
    return jsonify({name: conditioning_to_lists(v) for name, v in voices.items()
                    if v is not None and all(k in v for k in LATENT_FIELDS)})


@bp.post("/clone_speaker")
@require_key(SYNTHESIS)
def clone_speaker():
    """The latents of an uploaded clip (multipart field `wav_file`); nothing is stored."""
    svc = app_services()
    svc.require_ready()
    latent_template(svc)
    request.max_content_length = int(svc.settings.upload_max_mb * 1e6)
    upload = request.files.get("wav_file")
    if upload is None:
        raise bad_request("missing_clip", "send the clip as multipart field 'wav_file'",
                          param="wav_file")
    clips = svc.voice_manager.check_clips([(upload.filename or "wav_file", upload.stream)])
    conditioning = svc.scheduler.run(
        g.request_id, lambda: svc.engine.compute_conditioning([c.as_clip(c.filename)
                                                               for c in clips]))
    return jsonify(conditioning_to_lists(conditioning))
