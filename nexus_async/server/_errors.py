"""The one exception type the server's handlers raise for a client mistake."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ApiError", "error_code", "error_json"]

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


def error_code(status: int) -> str:
    """A stable machine-readable ``code`` for an HTTP status."""
    return _CODES.get(status, "error")


def error_json(message: str, status: int, code: str | None = None) -> dict[str, str]:
    """The spec's error body: ``{"message", "code"}``."""
    return {"message": message, "code": code or error_code(status)}


class ApiError(Exception):
    """Raised by state and handlers; the app turns it into ``{"message", "code"}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or error_code(status)
        self.headers = dict(headers or {})
