"""Plan: a parsed request resolved against the loaded engine and voices.

Every client error a synthesis can have is found here, before anything is queued or sent:
readiness, language, voice, output format, the text (front end: SSML, normalisation,
lexicons), token limits. What comes after (render,
body) only fails for server-side reasons.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from voxline.audio import AudioFormatError, OutputSpec, resolve_output
from voxline.engines.base import Conditioning, Engine, SynthesisParams, Utterance
from voxline.phrase_cache import phrase_key
from voxline.synthesis.errors import InvalidRequest, NoSpeakableText, UnknownVoice
from voxline.synthesis.frontend import Spoken
from voxline.synthesis.lines import Line, plan_lines
from voxline.synthesis.request import SynthesisRequest
from voxline.synthesis.services import Services
from voxline.synthesis.words import WordClock
from voxline.voices.cache import conditioning_digest

DEFAULT_VOICE_NAME = "default"  # names the default voice when no voice is called that


@dataclass(frozen=True)
class Plan:
    """Everything one synthesis needs, validated; nothing held yet."""

    text: str  # as the client sent it
    spoken: Spoken  # what the front end made of it
    lines: tuple[Line, ...]  # one engine call each
    tail_pause_ms: float  # silence after the last line (an SSML break at the end)
    voice_name: str
    voice: Conditioning
    voice_digest: str
    language: str
    params: SynthesisParams
    spec: OutputSpec
    use_cache: bool
    whole: bool  # one complete file (/tts) rather than a stream
    timestamps: bool = False  # the client wants word timings

    @property
    def sentences(self) -> tuple[str, ...]:
        return tuple(line.text for line in self.lines)

    def utterances(self) -> list[Utterance]:
        return [Utterance(line.text, self.voice, self.language, self._params(line))
                for line in self.lines]

    def _params(self, line: Line) -> SynthesisParams:
        if line.rate is None:
            return self.params
        speed = min(4.0, max(0.25, self.params.speed * line.rate))
        return dataclasses.replace(self.params, speed=speed)

    def word_clock(self, rate: int) -> WordClock:
        """Places the engine's words of this plan on its audio timeline and in its text."""
        return WordClock(self.lines, rate)


def plan_request(
    services: Services, req: SynthesisRequest, default_format: str, *, whole: bool = False,
    voice: tuple[str, Conditioning] | None = None,
) -> Plan:
    """Resolve a request; raise a domain error for the client. `voice` (name, latents) replaces
    the request's speaker: latents a client sent."""
    services.require_ready()
    engine = services.engine
    language = resolve_language(req.language, engine)
    if voice is None:
        name, conditioning = resolve_voice(services, req.speaker)
        digest = services.voices.digest(name) or conditioning_digest(conditioning)
    else:
        name, conditioning = voice
        digest = conditioning_digest(conditioning)
    spec = output_spec(req.format, req.sample_rate, engine, default_format)
    check_token_limit(req.params, engine)
    spoken = services.frontend.process(req.text, language=language, text_type=req.text_type,
                                       normalize=req.normalize, phonemes=engine.takes_phonemes)
    lines, tail = plan_lines(spoken, engine.sentence_limit(language), language)
    if not lines:
        raise NoSpeakableText(f"the text has nothing to speak: {req.text[:40]!r}")
    return Plan(req.text, spoken, lines, tail, name, conditioning, digest, language, req.params,
                spec, use_cache=req.cache and _cacheable(req.params),
                whole=whole, timestamps=req.timestamps)


def output_spec(fmt: str | None, rate: int | None, engine: Engine,
                default_format: str) -> OutputSpec:
    """The output format and rate a client asked for, checked against the engine's rate."""
    try:
        return resolve_output(fmt, rate, engine.sample_rate, default_format)
    except AudioFormatError as exc:
        raise InvalidRequest("unsupported_format", str(exc), param="format") from exc


def resolve_language(requested: str | None, engine: Engine) -> str:
    """The engine's code for a requested language; InvalidRequest for one it lacks or cannot
    load."""
    languages = engine.languages
    if requested is None:
        return languages[0]
    code = requested.strip().lower()
    unavailable = engine.unavailable_languages
    for candidate in (code, code.split("-")[0]):
        if candidate in languages:
            return candidate
        if candidate in unavailable:
            raise InvalidRequest("unsupported_language", f"language {candidate!r} is not "
                                 f"available on this server: {unavailable[candidate]}",
                                 param="language")
    raise InvalidRequest("unsupported_language",
                         f"language {requested!r} is not one of {', '.join(languages)}",
                         param="language")


def resolve_voice(services: Services, requested: str | None) -> tuple[str, Conditioning]:
    """A voice by name (`default` meaning the default voice); UnknownVoice otherwise."""
    bank = services.voices
    name = requested or bank.default
    if name == DEFAULT_VOICE_NAME and bank.get(name) is None:
        name = bank.default
    voice = bank.get(name) if name else None
    if voice is None:
        raise UnknownVoice("unknown_speaker",
                           f"speaker {requested!r} not found; GET /speakers lists the voices",
                           param="speaker")
    return name, voice


def check_token_limit(params: SynthesisParams, engine: Engine) -> None:
    """Forced lengths within the model's own limit (past it XTTS fails mid-stream)."""
    limit = engine.token_limit()
    for name in ("min_new_tokens", "max_new_tokens"):
        value = getattr(params, name)
        if value is not None and limit is not None and value > limit:
            raise InvalidRequest("invalid_parameter",
                                 f"{name}={value} exceeds this model's limit of {limit}",
                                 param=name)


def _cacheable(params: SynthesisParams) -> bool:
    """Forced output lengths are benchmark knobs (random-weight checkpoints): such requests
    measure synthesis, so the phrase cache leaves them alone."""
    return params.min_new_tokens is None and params.max_new_tokens is None


def render_key(services: Services, plan: Plan) -> str:
    """Everything that shapes a render's bytes: what is spoken (after normalisation and
    lexicons, so a lexicon change is heard at once), not the text as sent."""
    return phrase_key(
        engine=services.engine.model_id, engine_info=services.engine.info(),
        voice=plan.voice_digest, text=plan.spoken.key, language=plan.language,
        params=dataclasses.asdict(plan.params), format=plan.spec.format,
        rate=plan.spec.sample_rate, level=services.settings.level, whole=plan.whole,
        chunk_schedule=services.settings.chunk_schedule,  # XTTS crossfades at chunk edges
        timestamps=plan.timestamps,  # such a cached file carries its words
    )
