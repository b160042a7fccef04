"""Settings of the AGI paths, merged from defaults, a config file, the environment and the call."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Callable, Mapping

DEFAULT_CONFIG_FILE = "/etc/voxline/telephony.conf"
CONFIG_FILE_ENV = "VOXLINE_TTS_CONFIG"


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything one prompt needs besides its text (see telephony/README.md for the table)."""

    url: str = "http://127.0.0.1:8020"
    voice: str = ""
    language: str = "en"
    params: str = ""
    cache_dir: str = "/var/lib/asterisk/sounds/voxline"
    cache_max_mb: float = 200.0
    connect_timeout: float = 1.0
    first_byte_timeout: float = 5.0
    timeout: float = 20.0
    # The longest Retry-After of a busy server (503) that a prompt waits out, once, before
    # failing: a caller hears a short pause instead of the fallback. 0: never wait.
    retry_wait: float = 3.0
    fallback: str = "im-sorry"
    escape_digits: str = "0123456789*#"
    max_sentence_chars: int = 250
    # "ssml": the text is one SSML document, sent whole (the server cuts it; breaks and
    # say-as stay intact); "text": plain text, fetched sentence by sentence.
    text_type: str = "text"

    def __post_init__(self) -> None:
        """Reject values that would make a call hang or misbehave."""
        if not self.urls():
            raise ConfigError("url is empty")
        for url in self.urls():
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"url must start with http:// or https://: {url!r}")
        for name in ("connect_timeout", "first_byte_timeout", "timeout", "cache_max_mb"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if not self.retry_wait >= 0:
            raise ConfigError("retry_wait must be 0 or more")
        if self.text_type not in ("text", "ssml"):
            raise ConfigError(f"text_type must be text or ssml: {self.text_type!r}")
        if self.max_sentence_chars < 20:
            raise ConfigError("max_sentence_chars must be at least 20")
        if set(self.escape_digits) - set("0123456789*#ABCD"):
            raise ConfigError(f"escape_digits may hold only DTMF digits: {self.escape_digits!r}")

    def urls(self) -> list[str]:
        """`url` as a list: several servers, comma-separated, are tried in order."""
        return [part.strip() for part in self.url.split(",") if part.strip()]

    def merged(self, values: Mapping[str, str]) -> Settings:
        """Return a copy with the given `name: text` values parsed and applied."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, object] = {}
        for name, text in values.items():
            kind = types.get(name)
            if kind is None:
                raise ConfigError(f"unknown setting {name!r}")
            changes[name] = _parse(name, text.strip(), kind)
        return replace(self, **changes) if changes else self


def _parse(name: str, text: str, kind: object) -> object:
    """Convert one setting from text to its declared type."""
    try:
        if kind in ("float", float):
            return float(text)
        if kind in ("int", int):
            return int(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: not a number: {text!r}") from exc
    return text


def env_name(name: str) -> str:
    """The environment (and channel) variable name of a setting."""
    return "VOXLINE_TTS_" + name.upper()


SETTING_NAMES = tuple(f.name for f in fields(Settings))


def read_config_file(path: str) -> dict[str, str]:
    """Read `name = value` lines; `#` and `;` start comments, `[section]` lines are ignored."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line[0] in "#;[":
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise ConfigError(f"{path}:{number}: expected name = value")
            values[name.strip()] = value.strip()
    return values


def from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from defaults, the config file, then VOXLINE_TTS_* variables."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE)
    if path and os.path.exists(path):
        settings = settings.merged(read_config_file(path))
    elif CONFIG_FILE_ENV in environ and path:
        raise ConfigError(f"config file {path} does not exist")
    return settings.merged(_pick(lambda n: environ.get(env_name(n))))


def with_channel(settings: Settings, get_variable: Callable[[str], str | None]) -> Settings:
    """Apply the non-empty VOXLINE_TTS_* channel variables of a call."""
    return settings.merged(_pick(lambda n: get_variable(env_name(n))))


def _pick(lookup: Callable[[str], str | None]) -> dict[str, str]:
    """Collect the settings that a lookup function knows, skipping empty values."""
    found = {}
    for name in SETTING_NAMES:
        value = lookup(name)
        if value:
            found[name] = value
    return found


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """Parse `host:port` (or `host`) into a socket address."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host.strip("[]"), int(port)
