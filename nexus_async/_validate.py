"""Checks on user input, run before anything is sent.

Messages name the argument and the value, attrs-style:
"`limit` must be between 1 and 1000 (got 0)".
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .errors import ValidationError

__all__ = [
    "check_http_url",
    "check_id",
    "check_int",
    "check_keys",
    "check_number",
    "check_secret",
    "check_secret_key",
    "check_str",
    "check_timeout",
    "check_type",
    "instance_of",
    "integer",
    "number",
]

# IDs become path segments, so only characters that cannot change the path are
# allowed: no `/`, `?`, `#`, `%`, `:`, whitespace, and no `..`.
_ID_BODY = re.compile(r"[A-Za-z0-9_.\-]+")
_MAX_ID_LENGTH = 200
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


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


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float:
    """Return `value` as a float if it is a finite real number within the bounds.

    `minimum` and `maximum` are inclusive, `above` exclusive. Booleans, strings, NaN
    and infinities are rejected.
    """
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValidationError(f"`{name}` must be a finite number (got {_show(value)})")
    if above is not None and not value > above:
        raise ValidationError(f"`{name}` must be > {above:g} (got {value!r})")
    if minimum is not None and value < minimum:
        raise ValidationError(f"`{name}` must be >= {minimum:g} (got {value!r})")
    if maximum is not None and value > maximum:
        raise ValidationError(f"`{name}` must be <= {maximum:g} (got {value!r})")
    return float(value)


def check_timeout(value: Any, name: str = "timeout") -> httpx.Timeout:
    """An `httpx.Timeout` from a positive finite number of seconds, or one whose set parts are."""
    if isinstance(value, httpx.Timeout):
        for part, seconds in value.as_dict().items():
            if seconds is not None:
                check_number(seconds, f"{name}.{part}", above=0)
        return value
    if type(value) not in (int, float):
        raise ValidationError(
            f"`{name}` must be a number of seconds or an httpx.Timeout (got {_show(value)})"
        )
    return httpx.Timeout(check_number(value, name, above=0))


def check_type(value: Any, cls: type, name: str, *, optional: bool = False) -> Any:
    """Return `value` if it is an instance of `cls` (or None, when `optional`)."""
    if not (isinstance(value, cls) or (optional and value is None)):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        what = f"{article} {cls.__name__}" + (" or None" if optional else "")
        raise ValidationError(f"`{name}` must be {what} (got {_show(value)})")
    return value


# attrs validators over the checks above, so attrs classes raise `ValidationError` too.
_AttrsValidator = Callable[[Any, Any, Any], None]


def number(
    *, minimum: float | None = None, above: float | None = None, maximum: float | None = None
) -> _AttrsValidator:
    """An attrs validator: the field must pass `check_number` with these bounds."""

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        check_number(value, attribute.name, minimum=minimum, above=above, maximum=maximum)

    return validate


def instance_of(cls: type) -> _AttrsValidator:
    """An attrs validator: the field must be an instance of `cls`."""

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        check_type(value, cls, attribute.name)

    return validate


def integer(*, minimum: int | None = None, maximum: int | None = None) -> _AttrsValidator:
    """An attrs validator: the field must pass `check_int` with these bounds."""

    def validate(instance: Any, attribute: Any, value: Any) -> None:
        check_int(value, attribute.name, minimum=minimum, maximum=maximum)

    return validate


def check_str(value: Any, name: str, *, max_length: int = 1000) -> str:
    """Return `value` if it is a non-empty string of at most `max_length` characters."""
    if not isinstance(value, str):
        raise ValidationError(f"`{name}` must be a string (got {_show(value)})")
    if not value or len(value) > max_length:
        raise ValidationError(
            f"`{name}` must be 1 to {max_length} characters (got {len(value)} characters)"
        )
    return value


def check_http_url(value: Any, name: str, *, max_length: int = 2048, bare: bool = False) -> str:
    """Return `value` if it is an http(s) URL with a host, else raise `ValidationError`.

    With `bare` (an API root that paths are appended to) it must also have no
    user name or password, query or fragment, which would otherwise send requests
    elsewhere or put a password in every error message; the message then never
    echoes the URL, which may hold that password.
    """
    url = check_str(value, name, max_length=max_length)
    shown = "" if bare else f" (got {url!r})"
    if _BAD_URL_CHARS.search(url):
        raise ValidationError(f"`{name}` must not contain whitespace or control characters{shown}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValidationError(f"`{name}` is not a valid URL ({exc}){shown}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(f"`{name}` must be an http or https URL{shown}")
    if not parts.hostname:
        raise ValidationError(f"`{name}` must name a host{shown}")
    if bare:
        if "@" in parts.netloc:
            raise ValidationError(f"`{name}` must not contain a user name or password")
        if "?" in url or "#" in url:
            raise ValidationError(f"`{name}` must not have a query or fragment")
    return url


def check_secret(value: Any, name: str = "secret") -> str:
    """Return the wire form of a webhook secret: base64 of 24..64 bytes.

    A Standard Webhooks `whsec_` prefix is accepted and removed; `signing.verify`
    accepts either form. Messages never echo the value.
    """
    if not isinstance(value, str):
        raise ValidationError(f"`{name}` must be a base64 string (got {type(value).__name__})")
    text = value.removeprefix("whsec_")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"`{name}` must be valid base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValidationError(
            f"`{name}` must decode to {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes "
            f"(got {len(raw)}); use signing.generate_secret()"
        )
    return text


def check_secret_key(value: Any, name: str = "secret_key") -> str:
    """Return `value` if it can be sent as the API key header; messages never echo it.

    A key with a non-ASCII character (an en dash pasted from a web page) could not
    be encoded into the header, and every call would fail with the key in the error.
    """
    if not isinstance(value, str) or not value:
        raise ValidationError(f"`{name}` must be a non-empty string (got {type(value).__name__})")
    if not value.isascii():
        raise ValidationError(
            f"`{name}` must be ASCII; it has a character that is not (pasted from a web page?)"
        )
    if any(c.isspace() for c in value) or not value.isprintable():
        raise ValidationError(f"`{name}` must not contain whitespace or control characters")
    return value


def check_keys(value: Any, allowed: set[str] | frozenset[str], name: str) -> Mapping[str, Any]:
    """Return `value` if it is a mapping whose keys are all in `allowed`."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"`{name}` must be a dict (got {_show(value)})")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValidationError(f"`{name}` has unknown keys {unknown}; allowed: {sorted(allowed)}")
    return value
