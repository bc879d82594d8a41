"""Strict readers for JSON bodies and query strings.

Every failure is an ``Invalid`` error whose message names the field by its dotted
path (``spec.retries.maxRetries``) and says what was expected and what came, so a client
mistake never becomes a 500.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ._errors import Invalid

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "has_surrogate",
    "loads",
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


MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a body may have (the API's own bodies use 5)."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer magnitude accepted anywhere, as in I-JSON (RFC 7493): beyond it
JSON numbers stop being exact in most clients, and a timestamp stops being a date."""


# Only a JSON escape can produce a lone surrogate; it cannot be encoded as UTF-8, so such
# a string, once stored, would break every response that shows it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (which no UTF-8 response can carry)."""
    return _SURROGATE.search(text) is not None


def _magnitude(number: float) -> str:
    """A short rendering of a huge number (``int`` -> ``float`` would overflow)."""
    if isinstance(number, float):
        return f"{number:.6g}"
    digits = str(abs(number))
    return str(number) if len(digits) <= 20 else f"an integer of {len(digits)} digits"


def loads(text: str, what: str = "the request body") -> Any:
    """Decode JSON that is safe to store and to echo back.

    Raises:
        Invalid: not JSON, nested deeper than ``MAX_DEPTH``, a string (value or key)
            with a lone surrogate, a non-finite number or an integer beyond
            ``MAX_SAFE_INTEGER``, naming the offending path.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise Invalid(f"{what} is nested more than {MAX_DEPTH} deep") from None
    except ValueError as exc:
        raise Invalid(f"{what} is not valid JSON: {exc}") from exc
    # Iterative, so no input can exhaust the stack; every node is visited once.
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        where = f"`{path}` in {what}" if path else what
        if isinstance(node, (dict, list)):
            if depth >= MAX_DEPTH:
                raise Invalid(f"{what} is nested more than {MAX_DEPTH} deep")
            if isinstance(node, dict):
                for key, child in node.items():
                    if has_surrogate(key):
                        raise Invalid(f"a key in {where} contains a lone surrogate escape")
                    stack.append((child, _join(path, key), depth + 1))
            else:
                stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(node))
        elif isinstance(node, str):
            if has_surrogate(node):
                raise Invalid(f"{where} contains a lone surrogate escape (not UTF-8 text)")
        elif isinstance(node, float) and not math.isfinite(node):
            raise Invalid(f"{where} is not a finite number")
        elif isinstance(node, (int, float)) and abs(node) > MAX_SAFE_INTEGER:
            raise Invalid(f"{where} is beyond +-(2**53 - 1) (got {_magnitude(node)})")
    return value


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object (checked as by ``loads``)."""
    if not raw.strip():
        raise Invalid("the request body must be a JSON object (got an empty body)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("the request body is not UTF-8 JSON") from exc
    value = loads(text)
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
        if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            value = int(value)
        else:
            raise _bad(path, "an integer", value)
    if abs(value) > MAX_SAFE_INTEGER:
        raise Invalid(f"`{path}` must be within +-(2**53 - 1) (got {_magnitude(value)})")
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
    if abs(value) > MAX_SAFE_INTEGER:
        raise Invalid(f"query parameter `{name}` must be within +-(2**53 - 1)")
    if minimum is not None and value < minimum:
        raise Invalid(f"query parameter `{name}` must be >= {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise Invalid(f"query parameter `{name}` must be <= {maximum} (got {value})")
    return value
