"""Checks on user input, run before anything is sent.

Messages name the argument and the value, attrs-style:
"`limit` must be between 1 and 1000 (got 0)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ValidationError

__all__ = ["check_id", "check_int", "check_keys", "check_str"]

# IDs become path segments, so only characters that cannot change the path are
# allowed: no `/`, `?`, `#`, `%`, `:`, whitespace, and no `..`.
_ID_BODY = re.compile(r"[A-Za-z0-9_.\-]+")
_MAX_ID_LENGTH = 200


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_id(value: Any, prefix: str, name: str) -> str:
    """Return `value` if it is a safe ID with `prefix`, else raise `ValidationError`."""
    if not isinstance(value, str):
        raise ValidationError(f"`{name}` must be a string (got {_show(value)})")
    if not value.startswith(prefix) or len(value) == len(prefix):
        raise ValidationError(f"`{name}` must start with {prefix!r} (got {_show(value)})")
    if (
        len(value) > _MAX_ID_LENGTH
        or not _ID_BODY.fullmatch(value)
        or ".." in value
        or value.endswith(".")
    ):
        raise ValidationError(
            f"`{name}` must be at most {_MAX_ID_LENGTH} letters, digits, '_', '-' or '.' "
            f"with no '..' (got {_show(value)})"
        )
    return value


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return `value` if it is an int (not a bool) within the bounds, else raise."""
    if type(value) is not int:
        raise ValidationError(f"`{name}` must be an integer (got {_show(value)})")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValidationError(f"`{name}` must be between {minimum} and {maximum} (got {value})")
    if minimum is not None and value < minimum:
        raise ValidationError(f"`{name}` must be >= {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise ValidationError(f"`{name}` must be <= {maximum} (got {value})")
    return value


def check_str(value: Any, name: str, *, max_length: int = 1000) -> str:
    """Return `value` if it is a non-empty string of at most `max_length` characters."""
    if not isinstance(value, str):
        raise ValidationError(f"`{name}` must be a string (got {_show(value)})")
    if not value or len(value) > max_length:
        raise ValidationError(
            f"`{name}` must be 1 to {max_length} characters (got {len(value)} characters)"
        )
    return value


def check_keys(value: Any, allowed: set[str] | frozenset[str], name: str) -> Mapping[str, Any]:
    """Return `value` if it is a mapping whose keys are all in `allowed`."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"`{name}` must be a dict (got {_show(value)})")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValidationError(f"`{name}` has unknown keys {unknown}; allowed: {sorted(allowed)}")
    return value
