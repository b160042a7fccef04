"""Plan: a parsed request resolved against the loaded engine and voices.

Every client error a synthesis can have is found here, before anything is queued or sent:
readiness, language, voice, output format, sentences, token limits. What comes after (render,
body) only fails for server-side reasons.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from voxline.audio import AudioFormatError, OutputSpec, resolve_output
from voxline.engines.base import Conditioning, Engine, SynthesisParams, Utterance
from voxline.phrase_cache import phrase_key
from voxline.server.errors import ApiError, bad_request
from voxline.server.params import TtsRequest
from voxline.server.services import Services
from voxline.text import split_text
from voxline.voices.cache import conditioning_digest

DEFAULT_VOICE_NAME = "default"  # names the default voice when no voice is called that


@dataclass(frozen=True)
class Plan:
    """Everything one synthesis needs, validated; nothing held yet."""

    text: str
    sentences: tuple[str, ...]
    voice_name: str
    voice: Conditioning
    voice_digest: str
    language: str
    params: SynthesisParams
    spec: OutputSpec
    use_cache: bool
    whole: bool  # one complete file (/tts) rather than a stream

    def utterances(self) -> list[Utterance]:
        return [Utterance(s, self.voice, self.language, self.params) for s in self.sentences]


def plan_request(
    services: Services, req: TtsRequest, default_format: str, *, whole: bool = False,
    voice: tuple[str, Conditioning] | None = None,
) -> Plan:
    """Resolve a request; raise ApiError for the client. `voice` (name, latents) replaces the
    request's speaker: latents a client sent."""
    services.require_ready()
    engine = services.engine
    language = resolve_language(req.language, engine)
    if voice is None:
        name, conditioning = resolve_voice(services, req.speaker)
        digest = services.voices.digest(name) or conditioning_digest(conditioning)
    else:
        name, conditioning = voice
        digest = conditioning_digest(conditioning)
    try:
        spec = resolve_output(req.format, req.sample_rate, engine.sample_rate, default_format)
    except AudioFormatError as exc:
        raise bad_request("unsupported_format", str(exc), param="format") from exc
    check_token_limit(req.params, engine)
    sentences = tuple(split_text(req.text, engine.sentence_limit(language), language))
    if not sentences:
        raise bad_request("missing_text", "text has nothing to speak", param="text")
    return Plan(req.text, sentences, name, conditioning, digest, language, req.params, spec,
                use_cache=req.cache and _cacheable(req.params), whole=whole)


def resolve_language(requested: str | None, engine: Engine) -> str:
    """The engine's code for a requested language; 400 for one it lacks or cannot load."""
    languages = engine.languages
    if requested is None:
        return languages[0]
    code = requested.strip().lower()
    unavailable = engine.unavailable_languages
    for candidate in (code, code.split("-")[0]):
        if candidate in languages:
            return candidate
        if candidate in unavailable:
            raise bad_request("unsupported_language", f"language {candidate!r} is not available "
                              f"on this server: {unavailable[candidate]}", param="language")
    raise bad_request("unsupported_language",
                      f"language {requested!r} is not one of {', '.join(languages)}",
                      param="language")


def resolve_voice(services: Services, requested: str | None) -> tuple[str, Conditioning]:
    """A voice by name (`default` meaning the default voice); 404 for an unknown one."""
    bank = services.voices
    name = requested or bank.default
    if name == DEFAULT_VOICE_NAME and bank.get(name) is None:
        name = bank.default
    voice = bank.get(name) if name else None
    if voice is None:
        raise ApiError(404, "unknown_speaker",
                       f"speaker {requested!r} not found; GET /speakers lists the voices",
                       param="speaker")
    return name, voice


def check_token_limit(params: SynthesisParams, engine: Engine) -> None:
    """Forced lengths within the model's own limit (past it XTTS fails mid-stream)."""
    limit = engine.token_limit()
    for name in ("min_new_tokens", "max_new_tokens"):
        value = getattr(params, name)
        if value is not None and limit is not None and value > limit:
            raise bad_request("invalid_parameter",
                              f"{name}={value} exceeds this model's limit of {limit}", param=name)


def _cacheable(params: SynthesisParams) -> bool:
    """Forced output lengths are benchmark knobs (random-weight checkpoints): such requests
    measure synthesis, so the phrase cache leaves them alone."""
    return params.min_new_tokens is None and params.max_new_tokens is None


def render_key(services: Services, plan: Plan) -> str:
    """Everything that shapes a render's bytes."""
    return phrase_key(
        engine=services.engine.model_id, engine_info=services.engine.info(),
        voice=plan.voice_digest, text=plan.text, language=plan.language,
        params=dataclasses.asdict(plan.params), format=plan.spec.format,
        rate=plan.spec.sample_rate, level=services.settings.level, whole=plan.whole,
        chunk_schedule=services.settings.chunk_schedule,  # XTTS crossfades at chunk edges
    )
