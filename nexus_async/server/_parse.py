"""Strict readers for JSON bodies and query strings.

Every failure is an ``Invalid`` error whose message names the field by its dotted
path (``spec.retries.maxRetries``) and says what was expected and what came, so a client
mistake never becomes a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ._errors import Invalid

__all__ = [
    "opt_int",
    "opt_number",
    "opt_object",
    "opt_str",
    "parse_json_object",
    "query_int",
    "req_int",
    "req_object",
    "req_str",
]


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _bad(path: str, expected: str, value: object) -> Invalid:
    return Invalid(f"`{path}` must be {expected} (got {_describe(value)})")


def _missing(path: str) -> Invalid:
    return Invalid(f"`{path}` is required")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object."""
    if not raw.strip():
        raise Invalid("the request body must be a JSON object (got an empty body)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("the request body is not UTF-8 JSON") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _bad("body", "a JSON object", value)
    return value


def req_object(obj: Mapping[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
    """A required object field."""
    path = _join(prefix, key)
    if key not in obj or obj[key] is None:
        raise _missing(path)
    value = obj[key]
    if not isinstance(value, dict):
        raise _bad(path, "an object", value)
    return value


def opt_object(obj: Mapping[str, Any], key: str, prefix: str = "") -> dict[str, Any] | None:
    """An optional object field (absent or null -> None)."""
    if obj.get(key) is None:
        return None
    return req_object(obj, key, prefix)


def req_str(obj: Mapping[str, Any], key: str, prefix: str = "", *, max_len: int = 1024) -> str:
    """A required non-empty string field."""
    path = _join(prefix, key)
    if key not in obj or obj[key] is None:
        raise _missing(path)
    value = obj[key]
    if not isinstance(value, str):
        raise _bad(path, "a string", value)
    if not value.strip():
        raise Invalid(f"`{path}` must not be empty")
    if len(value) > max_len:
        raise Invalid(f"`{path}` must be at most {max_len} characters (got {len(value)})")
    return value


def opt_str(
    obj: Mapping[str, Any], key: str, prefix: str = "", *, max_len: int = 1024
) -> str | None:
    """An optional non-empty string field."""
    if obj.get(key) is None:
        return None
    return req_str(obj, key, prefix, max_len=max_len)


def _check_int(path: str, value: object, minimum: int | None, maximum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _bad(path, "an integer", value)
    if minimum is not None and value < minimum:
        raise Invalid(f"`{path}` must be >= {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise Invalid(f"`{path}` must be <= {maximum} (got {value})")
    return value


def req_int(
    obj: Mapping[str, Any],
    key: str,
    prefix: str = "",
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """A required integer field (``5.0`` is accepted as 5; booleans are not)."""
    path = _join(prefix, key)
    if key not in obj or obj[key] is None:
        raise _missing(path)
    return _check_int(path, obj[key], minimum, maximum)


def opt_int(
    obj: Mapping[str, Any],
    key: str,
    prefix: str = "",
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """An optional integer field."""
    if obj.get(key) is None:
        return None
    return req_int(obj, key, prefix, minimum=minimum, maximum=maximum)


def opt_number(
    obj: Mapping[str, Any],
    key: str,
    prefix: str = "",
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | None:
    """An optional finite number field."""
    path = _join(prefix, key)
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(path, "a finite number", value)
    if minimum is not None and value < minimum:
        raise Invalid(f"`{path}` must be >= {minimum:g} (got {value})")
    if maximum is not None and value > maximum:
        raise Invalid(f"`{path}` must be <= {maximum:g} (got {value})")
    return float(value)


def query_int(
    query: Mapping[str, str],
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """An optional integer query parameter; an empty value counts as absent."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise Invalid(f"query parameter `{name}` must be an integer (got {raw!r})") from None
    if minimum is not None and value < minimum:
        raise Invalid(f"query parameter `{name}` must be >= {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise Invalid(f"query parameter `{name}` must be <= {maximum} (got {value})")
    return value
