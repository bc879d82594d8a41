"""Webhook signatures in the Standard Webhooks scheme.

The local server signs every delivery with `sign`; receivers check it with
`verify`. The scheme (https://www.standardwebhooks.com/):

- headers `webhook-id` (the delivery id), `webhook-timestamp` (integer seconds since
  the Unix epoch) and `webhook-signature`;
- the signature is `v1,` followed by the base64 of
  `HMAC-SHA256(secret_bytes, f"{id}.{timestamp}.{raw body}")`, where `secret_bytes` is
  the base64-decoded secret (an optional `whsec_` prefix is ignored);
- the header may hold several space-separated signatures (one per secret while a secret
  is being rotated); a message is genuine if any of them matches any accepted secret.

This module is stdlib-only so that receivers can use it without the SDK's dependencies.

Example:
    from nexus_async.signing import verify, SignatureError

    try:
        verify(secret, headers["webhook-id"], headers["webhook-timestamp"], raw_body,
               headers["webhook-signature"])
    except SignatureError:
        ...  # answer 400 and drop the message
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets as _secrets
import time
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOLERANCE",
    "SignatureError",
    "generate_secret",
    "sign",
    "verify",
]

DEFAULT_TOLERANCE = 300.0
"""How far (seconds) a timestamp may be from the receiver's clock: 5 minutes."""

_SECRET_PREFIX = "whsec_"
_VERSION = "v1"
# Epoch seconds have 10 digits until the year 2286; a longer header is not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


class SignatureError(ValueError):
    """Raised when a webhook signature, timestamp or secret does not verify."""


def generate_secret() -> str:
    """Return a fresh secret: the base64 of 32 random bytes."""
    return base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


def _secret_bytes(secret: str) -> bytes:
    text = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the webhook secret is not valid base64") from exc
    if not key:
        raise SignatureError("the webhook secret is empty")
    return key


def _as_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(
    secret: str, msg_id: str, timestamp: int | float, body: bytes | bytearray | memoryview | str
) -> str:
    """Return the `webhook-signature` value for one message.

    Args:
        secret: the webhook secret, base64 (optionally `whsec_`-prefixed).
        msg_id: the `webhook-id` header value (the delivery id).
        timestamp: the `webhook-timestamp` header value, seconds since the epoch;
            fractions are dropped, as the header carries an integer.
        body: the exact request body that is sent (`str` is UTF-8 encoded).

    Returns:
        `"v1,<base64 signature>"`.

    Raises:
        SignatureError: the secret is not valid base64.
    """
    digest = _digest(_secret_bytes(secret), msg_id, int(timestamp), _as_bytes(body))
    return f"{_VERSION},{base64.b64encode(digest).decode('ascii')}"


def _parse_timestamp(timestamp: int | float | str) -> int:
    if isinstance(timestamp, str):
        text = timestamp.strip()
        # ASCII digits only: `str.isdigit` also passes "²" or Arabic-Indic digits, which
        # `int` then refuses; and short, as `int` refuses (or is slow on) thousands of digits.
        if not (text.isascii() and text.isdigit()) or len(text) > _MAX_TIMESTAMP_DIGITS:
            shown = timestamp if len(timestamp) <= 40 else timestamp[:40] + "..."
            raise SignatureError(
                f"webhook-timestamp is not an integer of at most {_MAX_TIMESTAMP_DIGITS}"
                f" digits (got {shown!r}, {len(timestamp)} characters)"
            )
        return int(text)
    if isinstance(timestamp, bool):
        raise SignatureError("webhook-timestamp is not an integer (got a bool)")
    if isinstance(timestamp, float) and not math.isfinite(timestamp):
        raise SignatureError(f"webhook-timestamp is not an integer (got {timestamp!r})")
    return int(timestamp)


def _candidates(signature: str) -> list[bytes]:
    found: list[bytes] = []
    for part in signature.split():
        version, sep, value = part.partition(",")
        if not sep or version != _VERSION:
            continue  # other schemes (e.g. v1a) are not ours to judge
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secret: str | Sequence[str],
    msg_id: str,
    timestamp: int | float | str,
    body: bytes | bytearray | memoryview | str,
    signature: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check one webhook message; return quietly if it is genuine.

    Args:
        secret: the webhook secret, or several (old and new while rotating).
        msg_id: the `webhook-id` header.
        timestamp: the `webhook-timestamp` header (string or number, seconds).
        body: the raw request body, exactly as received.
        signature: the `webhook-signature` header; several space-separated
            `v1,<base64>` values are accepted.
        tolerance: maximum distance in seconds between `timestamp` and `now`
            (default 300, as the scheme recommends), guarding against replays.
        now: the receiver's clock, seconds since the epoch; default `time.time()`.

    Raises:
        SignatureError: the timestamp is malformed or too far from `now`, a secret is
            not valid base64, or no signature matches (compared in constant time).
    """
    sent_at = _parse_timestamp(timestamp)
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise SignatureError(
            f"webhook-timestamp {sent_at} is more than {tolerance:g} s away from now"
        )
    keys = (
        [_secret_bytes(secret)] if isinstance(secret, str) else [_secret_bytes(s) for s in secret]
    )
    if not keys:
        raise SignatureError("no webhook secret given")
    candidates = _candidates(signature)
    if not candidates:
        raise SignatureError("webhook-signature holds no v1 signature")
    raw = _as_bytes(body)
    matched = False
    for key in keys:
        expected = _digest(key, msg_id, sent_at, raw)
        for candidate in candidates:
            # Compare every pair (no early exit) so timing says nothing about which matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("webhook-signature does not match the body")
