"""Client-facing errors: every one becomes `{"error": code, "message": text}` with a status."""

from __future__ import annotations


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


def not_ready(state: str) -> ApiError:
    """503 while the model or voices are still loading (or failed to)."""
    return ApiError(503, "not_ready", f"the server is {state}", {"Retry-After": "5"})
