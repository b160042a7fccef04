"""Speak text on an AGI channel: cached, pipelined per sentence, with a fallback on failure."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .cache import Prompt, PromptCache, prompt_key
from .client import JSON_TYPES, TtsError, TtsRequest, build_timed_body, read_timed
from .config import ConfigError, Settings, with_channel
from .heard import heard_text
from .log import get_logger
from .protocol import AgiChannel, AgiCommandError, AgiHangup
from .text import split_sentences

logger = get_logger(__name__)

OK, INTERRUPTED, ERROR = "OK", "INTERRUPTED", "ERROR"
_POLL_S = 0.05
_SAMPLES_PER_MS = 8  # STREAM FILE's endpos counts 8 kHz samples


@dataclass
class Outcome:
    """What the dialplan learns through VOXLINE_STATUS, VOXLINE_DIGIT, VOXLINE_ERROR,
    VOXLINE_HEARD (the text the caller heard) and VOXLINE_HEARD_MS (the audio played)."""

    status: str
    digit: str = ""
    error: str = ""
    heard: str = ""
    heard_ms: int = 0


class Prefetch:
    """One prompt being made ready in a daemon thread (cache hit or server request)."""

    def __init__(self, cache: PromptCache, settings: Settings, text: str) -> None:
        self.cache = cache
        self.settings = settings
        self.text = text
        self.key = prompt_key(text, settings.voice, settings.language,
                              _with_text_type(settings.params, settings.text_type))
        self.cancel = threading.Event()
        self.error: TtsError | None = None
        self._done = threading.Event()
        self.prompt: Prompt | None = cache.lookup(self.key)
        if self.prompt is not None:
            self._done.set()
        else:
            threading.Thread(target=self._run, name="voxline-fetch", daemon=True).start()

    def _run(self) -> None:
        """Fetch the prompt and its word timings from the server into the cache."""
        s = self.settings
        params = _with_text_type(s.params, s.text_type)
        body = build_timed_body(self.text, s.voice, s.language, params, "ulaw", 8000)
        request = TtsRequest(
            s.url,
            "",
            s.connect_timeout,
            s.first_byte_timeout,
            s.timeout,
            accept_types=JSON_TYPES,
            cancel=self.cancel,
            body=body,
            route="/tts",
            retry_wait=s.retry_wait,
        )
        try:
            audio, words = read_timed(request.chunks())
            self.prompt = self.cache.store(self.key, audio, words)
        except TtsError as exc:
            self.error = exc
        except OSError as exc:
            self.error = TtsError("cache", str(exc))
        finally:
            self._done.set()

    def wait(self, channel: AgiChannel) -> Prompt:
        """Wait for the prompt while watching for a hang-up."""
        deadline = time.monotonic() + self.settings.timeout + self.settings.connect_timeout + 1
        while not self._done.wait(_POLL_S):
            if channel.hangup_pending(0):
                self.cancel.set()
                raise AgiHangup("hang-up while waiting for synthesis")
            if time.monotonic() > deadline:
                self.cancel.set()
                raise TtsError("timeout", "synthesis took longer than the timeout")
        if self.error is not None:
            raise self.error
        assert self.prompt is not None
        return self.prompt


def speak(channel: AgiChannel, settings: Settings, text: str) -> Outcome:
    """Play `text` sentence by sentence (n+1 fetched while n plays); never raises but AgiHangup.

    The outcome says what the caller heard: whole sentences played, then the words of the
    interrupted one that had ended where playback stopped.
    """
    cache = PromptCache(settings.cache_dir, int(settings.cache_max_mb * 1024 * 1024))
    # An SSML document goes whole: cutting it here would break its elements.
    sentences = ([text] if settings.text_type == "ssml" and text.strip()
                 else split_sentences(text, settings.max_sentence_chars))
    if not sentences:
        return fail(channel, settings, TtsError("no_text", "nothing to say"))
    pending = Prefetch(cache, settings, sentences[0])
    played_ms = 0.0
    try:
        for index in range(len(sentences)):
            # What the caller heard should this sentence fail: the sentences before it.
            before = Outcome(
                ERROR, heard=heard_text(text, sentences, index), heard_ms=round(played_ms)
            )
            try:
                prompt = pending.wait(channel)
            except TtsError as exc:
                return fail(channel, settings, exc, before)
            if index + 1 < len(sentences):
                pending = Prefetch(cache, settings, sentences[index + 1])
            reply = channel.stream_file(prompt.path, settings.escape_digits)
            position_ms = (reply.endpos or 0) / _SAMPLES_PER_MS
            played_ms += position_ms
            if reply.result > 0:
                heard = heard_text(text, sentences, index, prompt.words, position_ms)
                return Outcome(
                    INTERRUPTED, chr(reply.result), heard=heard, heard_ms=round(played_ms)
                )
            if reply.result < 0:
                channel.hangup_pending(0.05)
                if channel.hung_up:
                    raise AgiHangup("hang-up during playback")
                error = TtsError("playback", f"cannot play {prompt.path}")
                return fail(channel, settings, error, before)
        return Outcome(OK, heard=text, heard_ms=round(played_ms))
    finally:
        pending.cancel.set()


def fail(
    channel: AgiChannel, settings: Settings, error: Exception, before: Outcome | None = None
) -> Outcome:
    """Log a failure and play the fallback prompt; a digit pressed during it is reported.
    `before` holds what the caller heard of the prompt until it failed."""
    reason = error.reason if isinstance(error, TtsError) else "config"
    detail = error.detail if isinstance(error, TtsError) else str(error)
    logger.warning("voxline prompt failed (%s): %s", reason, detail)
    outcome = before or Outcome(ERROR)
    outcome.status, outcome.error = ERROR, f"{reason}: {detail}"[:200]
    if settings.fallback:
        reply = channel.stream_file(settings.fallback, settings.escape_digits)
        if reply.result > 0:
            outcome.digit = chr(reply.result)
    return outcome


def report(channel: AgiChannel, outcome: Outcome) -> None:
    """Publish an outcome as channel variables."""
    channel.set_variable("VOXLINE_STATUS", outcome.status)
    channel.set_variable("VOXLINE_DIGIT", outcome.digit)
    channel.set_variable("VOXLINE_ERROR", outcome.error)
    # A channel variable cannot hold a line break (AGI commands are lines).
    channel.set_variable("VOXLINE_HEARD", outcome.heard.replace("\r", " ").replace("\n", " "))
    channel.set_variable("VOXLINE_HEARD_MS", str(outcome.heard_ms))


def run_call(
    channel: AgiChannel, base: Settings | ConfigError, text: str, overrides: dict[str, str]
) -> Outcome:
    """Resolve a call's settings, speak and report; returns the outcome (raises AgiHangup)."""
    try:
        if isinstance(base, ConfigError):
            raise base
        settings = with_channel(base, channel.get_variable).merged(overrides)
    except ConfigError as exc:
        outcome = fail(channel, Settings(), exc)
    else:
        try:
            outcome = speak(channel, settings, text)
        except AgiCommandError as exc:
            logger.warning("asterisk refused a command: %s", exc)
            outcome = Outcome(ERROR, error=f"agi: {exc}"[:200])
    report(channel, outcome)
    return outcome


def _with_text_type(params: str, text_type: str) -> str:
    """The request's extra fields with `text_type` when it is not the default."""
    if text_type == "text":
        return params
    return f"{params}&text_type={text_type}" if params else f"text_type={text_type}"
