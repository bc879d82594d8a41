"""The spec's error body, ``{"message", "code"}``, shared by the app and the fault layer."""

from __future__ import annotations

__all__ = ["error_code", "error_json"]

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
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
    """The spec's error body for ``status``, with the status's default code unless given."""
    return {"message": message, "code": code or error_code(status)}
