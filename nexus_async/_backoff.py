"""The one backoff policy, used both by request retries and by polling, and the retry decision.

Delays grow exponentially from `initial` by `multiplier` up to `maximum`, and each
is scaled by a random factor in [1 - jitter, 1] so that many clients (or many
coroutines of one client) do not retry in lockstep. Retries are bounded by
attempts *and* by total time, as stamina does, so no default retries forever.

`decide` is the whole retry rule as a pure function of one attempt's `Outcome`: the
HTTP layer runs attempts and does what it says, so the rule is tested as a table
without any I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs

from ._validate import instance_of, integer, number
from .errors import APIError, ValidationError

__all__ = [
    "RETRY_STATUSES",
    "Backoff",
    "Decision",
    "Outcome",
    "RetryEvent",
    "RetryPolicy",
    "decide",
]

# Statuses an idempotent request is retried on.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@attrs.frozen
class Backoff:
    """Capped, jittered exponential delays.

    Args:
        initial: First delay in seconds (> 0).
        maximum: Cap on any delay, in seconds (> 0).
        multiplier: Growth factor between consecutive delays (>= 1).
        jitter: Fraction of each delay that is randomised away (0 = none, 1 = full jitter).

    Raises:
        nexus_async.ValidationError: an argument out of range, naming it.
    """

    initial: float = attrs.field(default=0.2, validator=number(above=0))
    maximum: float = attrs.field(default=5.0, validator=number(above=0))
    multiplier: float = attrs.field(default=2.0, validator=number(minimum=1))
    jitter: float = attrs.field(default=0.25, validator=number(minimum=0, maximum=1))

    def delay(self, attempt: int, draw: float | None = None) -> float:
        """Delay before retry `attempt` (0-based): min(maximum, initial * multiplier**attempt).

        Then jittered: scaled by `1 - jitter * draw`, where `draw` is a number in
        [0, 1) (a fresh random one when None).
        """
        base = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return base * (1.0 - self.jitter * (random.random() if draw is None else draw))


def _callable_or_none(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not callable(value):
        raise ValidationError(
            f"`{attribute.name}` must be a function or None (got a {type(value).__name__})"
        )


@attrs.frozen
class RetryPolicy:
    """When and how long to retry a failed request.

    A request is retried at most `attempts - 1` times and never past `total_time`
    seconds after its first attempt started. What may be retried at all (idempotent
    or not) is decided by the caller, not here.

    Args:
        attempts: Total attempts, including the first (1 disables retries).
        total_time: Seconds after which no new attempt starts (> 0).
        backoff: Delays between attempts.
        max_retry_after: Longest `Retry-After` (seconds) we are willing to sleep for; a
            longer one raises `RateLimitedError` at once so the caller can decide.
        on_retry: Called (sync or async) with a `RetryEvent` before each retry sleeps;
            for logging or metrics. What it raises ends the call.

    Raises:
        nexus_async.ValidationError: an argument out of range, naming it.
    """

    attempts: int = attrs.field(default=5, validator=integer(minimum=1))
    total_time: float = attrs.field(default=60.0, validator=number(above=0))
    backoff: Backoff = attrs.field(factory=Backoff, validator=instance_of(Backoff))
    max_retry_after: float = attrs.field(default=60.0, validator=number(minimum=0))
    on_retry: Callable[[RetryEvent], object] | None = attrs.field(
        default=None, validator=_callable_or_none, kw_only=True
    )


@attrs.frozen
class RetryEvent:
    """A retry about to happen, as `RetryPolicy.on_retry` is told of it.

    Args:
        attempt: The 1-based number of the attempt that failed.
        delay: Seconds until the next attempt.
        reason: Why it failed, short: "HTTP 503", "RequestTimeoutError", ...
        error: The error that attempt would have raised.
        method: The request's method.
        url: The request's URL (without any query).
    """

    attempt: int
    delay: float
    reason: str
    error: APIError
    method: str
    url: str


@attrs.frozen
class Outcome:
    """What one failed attempt came to, as far as retrying is concerned.

    Args:
        status: The HTTP status of the answer; None when no answer arrived.
        sent: False only when the request provably never reached the server (it
            could not connect, or no pooled connection was free).
        retry_after: The answer's `Retry-After` in seconds, if any (only a 429's counts).
    """

    status: int | None = None
    sent: bool = True
    retry_after: float | None = None


@attrs.frozen
class Decision:
    """What to do after a failed attempt.

    Args:
        retry: Whether to make another attempt.
        delay: Seconds to wait before it (0 when not retrying).
        pause: Seconds every request of the client should hold off (a 429's wait),
            0 for none. Set even when this request is not retried: the server asked
            the client, not this call, to slow down.
    """

    retry: bool
    delay: float = 0.0
    pause: float = 0.0


def decide(
    policy: RetryPolicy,
    *,
    attempt: int,
    outcome: Outcome,
    idempotent: bool,
    elapsed: float,
    pauses_client: bool = True,
    draw: float | None = None,
) -> Decision:
    """Whether, and after how long, to retry a request whose attempt `attempt` failed.

    An idempotent request is retried on a failure without an answer and on the
    statuses in `RETRY_STATUSES`; any other only when it was provably not sent. The
    wait is a 429's `Retry-After` when given, else the policy's backoff for this
    attempt; it is computed once and also serves as a 429's client-wide pause. There
    is no retry once `attempt` reaches `policy.attempts`, when the next attempt would
    start after `policy.total_time` (`elapsed` is the time since the first one
    started), or when `Retry-After` exceeds `policy.max_retry_after` (which then
    pauses nothing: the caller gets the error, with the hint, at once).

    Args:
        policy: The retry policy.
        attempt: The 1-based number of the attempt that failed.
        outcome: How it failed.
        idempotent: Whether repeating the request is safe once it may have been sent.
        elapsed: Seconds since the first attempt started.
        pauses_client: Whether a 429 here pauses the whole client (False for hosts
            other than the API's, such as a storage bucket).
        draw: The jitter's random draw in [0, 1) (fresh when None; fixed in tests).

    Returns:
        The decision; a pure function of its arguments when `draw` is given.
    """
    hint = outcome.retry_after if outcome.status == 429 else None
    wait = policy.backoff.delay(attempt - 1, draw) if hint is None else hint
    patient = hint is None or hint <= policy.max_retry_after
    pause = wait if outcome.status == 429 and pauses_client and patient else 0.0
    if outcome.status is None:
        retryable = idempotent or not outcome.sent
    else:
        retryable = idempotent and outcome.status in RETRY_STATUSES
    if retryable and patient and attempt < policy.attempts and elapsed + wait <= policy.total_time:
        return Decision(retry=True, delay=wait, pause=pause)
    return Decision(retry=False, pause=pause)
