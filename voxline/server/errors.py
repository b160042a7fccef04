"""HTTP errors, and the one mapping from domain errors to HTTP statuses.

Domain code (request parsing, plan, scheduler, voices, render) raises its own exceptions;
`to_api_error` turns each into an `ApiError` once, and each API family renders that in its own
shape (Voxline's `{"error": code, "message": text}`, OpenAI's `{"error": {...}}`).
"""

from __future__ import annotations

from voxline.scheduler import Cancelled, QueueFull, QueueTimeout, SynthesisError
from voxline.synthesis.errors import (
    InvalidRequest,
    NoAudio,
    NotReady,
    RequestError,
    TooLarge,
    UnknownLexicon,
    UnknownVoice,
)
from voxline.tape import RenderStalled
from voxline.voices.upload import UploadError

# Voice-management codes that are not a plain 400.
_UPLOAD_STATUS = {"voice_exists": 409, "builtin_voice": 409, "default_voice": 409,
                  "unknown_voice": 404, "too_large": 413}
_REQUEST_STATUS = ((TooLarge, 413), (UnknownVoice, 404), (UnknownLexicon, 404),
                   (InvalidRequest, 400))


class ApiError(Exception):
    """An error the client should see, with its HTTP status and a stable code.

    `param` names the request field at fault, for APIs that report it (OpenAI's error shape).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.param = param

    def body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


def bad_request(code: str, message: str, param: str | None = None) -> ApiError:
    return ApiError(400, code, message, param=param)


def to_api_error(exc: BaseException) -> ApiError | None:
    """The client-facing form of a domain error; None for an unexpected one (a 500)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestError):
        status = next((s for kind, s in _REQUEST_STATUS if isinstance(exc, kind)), 400)
        return ApiError(status, exc.code, exc.message, param=exc.param)
    if isinstance(exc, NotReady):
        return ApiError(503, "not_ready", str(exc), {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, QueueFull):  # QueueTimeout included
        code = "queue_timeout" if isinstance(exc, QueueTimeout) else "queue_full"
        return ApiError(503, code, str(exc), {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, Cancelled):
        return ApiError(499, "client_closed", "client went away while waiting")
    if isinstance(exc, UploadError):
        return ApiError(_UPLOAD_STATUS.get(exc.code, 400), exc.code, str(exc))
    if isinstance(exc, (SynthesisError, NoAudio)):
        return ApiError(500, "synthesis_failed", "synthesis failed; see the server log")
    if isinstance(exc, RenderStalled):
        return ApiError(503, "render_stalled", f"synthesis stalled: {exc}", {"Retry-After": "5"})
    return None
