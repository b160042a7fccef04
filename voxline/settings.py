"""Typed server settings read once from `VOXLINE_*` environment variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from voxline.audio.levels import parse_level_policy

_ENGINES = ("auto", "xtts", "piper", "tone")
_TRISTATE = ("auto", "on", "off")
_DEVICES = ("auto", "cpu", "cuda")
_CUDA_INDEX = re.compile(r"^cuda:\d+$")  # one replica pinned to one GPU
MIN_KEY_LENGTH = 8


class SettingsError(ValueError):
    """A setting has a value the server cannot start with."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxline"


@dataclass(frozen=True)
class Settings:
    """Every knob of the server; `from_env` validates and fails with a clear message."""

    engine: str = "auto"
    xtts_dir: Path | None = None
    device: str = "auto"
    deepspeed: str = "auto"
    fp16: bool = False
    speakers_dir: Path = Path("speakers")
    cache_dir: Path = field(default_factory=_default_cache_dir)
    default_voice: str | None = None
    max_chars: int = 5000
    max_queue: int = 16
    # Streams synthesised at once, at most (interleaved chunk by chunk); more wait in the
    # queue. The measured capacity usually refuses first: see target_load.
    max_active: int = 32
    # Admission by predicted lateness: a request is refused at once (503, Retry-After) when
    # the streams would need more than this share of the engine's measured output (0: off,
    # only the count limits apply).
    target_load: float = 0.85
    # ... counting a new stream due this long after its arrival (its first-audio allowance).
    first_audio_s: float = 1.5
    # Rows per GPT forward pass (continuous batching): with more active requests, those with
    # the earliest playback deadlines advance (1: interleave). See bench/RESULTS.md.
    max_batch: int = 8
    # Piper renders that run at once, each on its own single-threaded ONNX session (0: one
    # per core); a render alone always takes a session with a thread per core.
    piper_renders: int = 0
    # GPT tokens per XTTS chunk: a small first chunk for fast first audio, then larger ones
    # (each chunk costs a vocoder call over its new audio plus a short left context).
    chunk_schedule: str = "4,20"
    queue_timeout_s: float = 120.0
    # Backpressure: a stream runs at most this many seconds of audio ahead of what its client
    # has taken (its synthesis pauses beyond), and a client that takes nothing for
    # `write_timeout_s` loses its stream.
    max_ahead_s: float = 10.0
    write_timeout_s: float = 30.0
    # A render that yields no audio for this long (after it started) fails visibly.
    render_stall_s: float = 60.0
    warmup: bool = True
    tone_chunk_ms: float = 20.0
    tone_first_chunk_ms: float = 20.0
    # Output level policy (voxline.audio.levels): "none", "gain:DB", "limit" or "limit:DB".
    level: str = "limit"
    threads: int = 64
    bind: str = "127.0.0.1:8020"
    # Bearer keys, comma-separated: API keys may synthesise, admin keys may also manage voices.
    # No API keys: synthesis is open; no admin keys: voice management is off.
    api_keys: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    # OpenAI voice names mapped to voices: "alloy=default,echo=Studio Sine". OpenAI names not
    # mapped here (or mapped to a missing voice) speak with the default voice.
    voice_aliases: str = ""
    # Phrase cache of complete renders on disk (under cache_dir/phrases); 0 turns it off.
    phrase_cache_mb: float = 256.0
    # Realtime sessions (websocket /v1/audio/speech/stream): each open session holds one
    # gunicorn thread, so VOXLINE_THREADS must exceed session_max by the HTTP concurrency.
    session_max: int = 8
    session_max_contexts: int = 4
    session_idle_s: float = 60.0
    session_ping_s: float = 20.0
    # Voice uploads (POST /v1/voices): largest request body and longest clip.
    upload_max_mb: float = 25.0
    upload_max_seconds: float = 60.0
    # Text front end. Pronunciation lexicons (W3C PLS, NAME.pls) load from this folder at
    # startup, and `PUT /v1/lexicons/NAME` writes there. Compiled normalisation grammars live
    # in `grammar_dir` (shared by every server of the host; `scripts/setup` compiles English
    # ahead); `normalize_languages` load before /ready says ready, the others in the
    # background after it.
    lexicons_dir: Path = Path("lexicons")
    grammar_dir: Path = field(default_factory=lambda: _default_cache_dir() / "grammars")
    normalize_languages: tuple[str, ...] = ("en",)
    # Child processes per language that run the grammars (pynini holds the GIL while it
    # composes: in the server's process every number-heavy text would stall every stream);
    # a text's windows run in parallel across them. 0: in the server's process.
    normalize_processes: int = 2

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from `VOXLINE_*` variables (unset ones keep their defaults)."""
        env = os.environ if env is None else env
        raw = {}
        for f in fields(cls):
            key = "VOXLINE_" + f.name.upper()
            if key in env and env[key] != "":
                raw[f.name] = env[key]
        return cls.from_mapping(raw)

    @classmethod
    def from_mapping(cls, raw: dict[str, object]) -> Settings:
        """Build settings from a mapping of field names to strings or typed values."""
        known = {f.name: f for f in fields(cls)}
        unknown = set(raw) - set(known)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        values = {name: _convert(name, known[name].type, value) for name, value in raw.items()}
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values outside their allowed sets or ranges."""
        _choice("engine", self.engine, _ENGINES)
        if not _CUDA_INDEX.match(self.device):
            _choice("device", self.device, _DEVICES + ("cuda:N",))
        _choice("deepspeed", self.deepspeed, _TRISTATE)
        if self.max_chars < 1:
            raise SettingsError("VOXLINE_MAX_CHARS must be at least 1")
        if self.max_queue < 0:
            raise SettingsError("VOXLINE_MAX_QUEUE must be 0 or more")
        try:
            parse_level_policy(self.level)
        except ValueError as exc:
            raise SettingsError(f"VOXLINE_LEVEL: {exc}") from exc
        if self.max_batch < 1:
            raise SettingsError("VOXLINE_MAX_BATCH must be at least 1")
        if self.max_active < 1:
            raise SettingsError("VOXLINE_MAX_ACTIVE must be at least 1")
        self.chunk_sizes()
        if not 0 <= self.target_load <= 1:
            raise SettingsError("VOXLINE_TARGET_LOAD must be 0 (off) to 1")
        for name in ("max_ahead_s", "write_timeout_s", "render_stall_s", "queue_timeout_s",
                     "first_audio_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"VOXLINE_{name.upper()} must be more than 0")
        if self.threads < 1:
            raise SettingsError("VOXLINE_THREADS must be at least 1")
        if self.piper_renders < 0:
            raise SettingsError("VOXLINE_PIPER_RENDERS must be 0 (one per core) or more")
        if self.normalize_processes < 0:
            raise SettingsError("VOXLINE_NORMALIZE_PROCESSES must be 0 or more")
        self._validate_product()

    def _validate_product(self) -> None:
        """Keys, aliases and the phrase-cache and upload limits."""
        for name in ("api_keys", "admin_keys"):
            for key in getattr(self, name):
                if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
                    raise SettingsError(
                        f"VOXLINE_{name.upper()}: every key needs at least {MIN_KEY_LENGTH} "
                        "characters and no spaces"
                    )
        self.alias_map()
        if self.phrase_cache_mb < 0:
            raise SettingsError("VOXLINE_PHRASE_CACHE_MB must be 0 (off) or more")
        if self.upload_max_mb <= 0:
            raise SettingsError("VOXLINE_UPLOAD_MAX_MB must be more than 0")
        if self.upload_max_seconds < 3:
            raise SettingsError("VOXLINE_UPLOAD_MAX_SECONDS must be at least 3")
        if self.session_max < 0 or self.session_max_contexts < 1:
            raise SettingsError("VOXLINE_SESSION_MAX must be 0 or more and "
                                "VOXLINE_SESSION_MAX_CONTEXTS at least 1")
        if self.session_idle_s <= 0 or self.session_ping_s < 0:
            raise SettingsError("VOXLINE_SESSION_IDLE_S must be more than 0 and "
                                "VOXLINE_SESSION_PING_S 0 (off) or more")

    def alias_map(self) -> dict[str, str]:
        """`voice_aliases` as {alias: voice}: "alloy=default, echo=Studio Sine"."""
        aliases: dict[str, str] = {}
        for item in self.voice_aliases.split(","):
            if not item.strip():
                continue
            alias, sep, voice = item.partition("=")
            alias, voice = alias.strip().lower(), voice.strip()
            if not sep or not alias or not voice:
                raise SettingsError(
                    f"VOXLINE_VOICE_ALIASES: {item.strip()!r} is not ALIAS=VOICE "
                    "(example: alloy=default,echo=Studio Sine)"
                )
            aliases[alias] = voice
        return aliases


    def chunk_sizes(self) -> tuple[int, ...]:
        """`chunk_schedule` as numbers: "4,20" -> (4, 20)."""
        try:
            sizes = tuple(int(x) for x in self.chunk_schedule.split(","))
        except ValueError:
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise SettingsError(f"VOXLINE_CHUNK_SCHEDULE={self.chunk_schedule!r} must be "
                                "positive token counts separated by commas, e.g. 4,20")
        return sizes


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingsError(
            f"VOXLINE_{name.upper()}={value!r} is not one of {', '.join(allowed)}"
        )


def _convert(name: str, type_name: object, value: object) -> object:
    if not isinstance(value, str):
        return value
    kind = str(type_name)
    try:
        if kind.startswith("Path"):
            return Path(value).expanduser()
        if kind == "bool":
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"VOXLINE_{name.upper()}={value!r} is not a valid {kind}") from exc
    return value
