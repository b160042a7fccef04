"""Domain errors of a synthesis request: what the client did wrong, or why it was refused.

Doors map them once each (HTTP statuses in `voxline/server/errors.py`, session codes in
`voxline/realtime/`); nothing below the doors knows a status code.
"""

from __future__ import annotations


class RequestError(Exception):
    """The client's request cannot be served as sent: a stable `code`, a message for people,
    and the field at fault (`param`) where there is one."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


class InvalidRequest(RequestError):
    """Malformed or out-of-range input (HTTP 400)."""


class TooLarge(RequestError):
    """A body or text over its limit (HTTP 413)."""


class UnknownVoice(RequestError):
    """No voice of that name (HTTP 404)."""


class NoSpeakableText(InvalidRequest):
    """The text holds nothing to say once normalised (punctuation only, say)."""

    def __init__(self, message: str = "the text has nothing to speak", param: str = "text"):
        super().__init__("no_speakable_text", message, param)


class NotReady(Exception):
    """The server is still loading, or failed to (HTTP 503 with Retry-After)."""

    retry_after = 5  # seconds: a load takes that order of time

    def __init__(self, state: str) -> None:
        super().__init__(f"the server is {state}")
        self.state = state


class NoAudio(RuntimeError):
    """A synthesis ended without producing any audio (never sent as an empty 200)."""


class UnknownLexicon(RequestError):
    """No pronunciation lexicon of that name (HTTP 404)."""

    def __init__(self, name: str) -> None:
        super().__init__("unknown_lexicon", f"no lexicon named {name!r}", "lexicon")
        self.name = name
