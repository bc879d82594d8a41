"""The one backoff policy, used both by request retries and by polling.

Delays grow exponentially from `initial` by `multiplier` up to `maximum`, and each
is scaled by a random factor in [1 - jitter, 1] so that many clients (or many
coroutines of one client) do not retry in lockstep. Retries are bounded by
attempts *and* by total time, as stamina does, so no default retries forever.
"""

from __future__ import annotations

import random

import attrs

__all__ = ["Backoff", "RetryPolicy"]


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"`{attribute.name}` must be > 0 (got {value!r})")


@attrs.frozen
class Backoff:
    """Capped, jittered exponential delays.

    Args:
        initial: First delay in seconds.
        maximum: Cap on any delay, in seconds.
        multiplier: Growth factor between consecutive delays (>= 1).
        jitter: Fraction of each delay that is randomised away (0 = none, 1 = full jitter).
    """

    initial: float = attrs.field(default=0.2, validator=_positive)
    maximum: float = attrs.field(default=5.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    jitter: float = attrs.field(
        default=0.25, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )

    def delay(self, attempt: int) -> float:
        """Delay before retry `attempt` (0-based): min(maximum, initial * multiplier**attempt).

        Then jittered: scaled by a random factor in [1 - jitter, 1].
        """
        base = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return base * (1.0 - self.jitter * random.random())


@attrs.frozen
class RetryPolicy:
    """When and how long to retry a failed request.

    A request is retried at most `attempts - 1` times and never past `total_time`
    seconds after its first attempt started. What may be retried at all (idempotent
    or not) is decided by the caller, not here.

    Args:
        attempts: Total attempts, including the first (1 disables retries).
        total_time: Seconds after which no new attempt starts.
        backoff: Delays between attempts.
        max_retry_after: Longest `Retry-After` (seconds) we are willing to sleep for; a
            longer one raises `RateLimitedError` at once so the caller can decide.
    """

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    total_time: float = attrs.field(default=60.0, validator=_positive)
    backoff: Backoff = attrs.field(factory=Backoff)
    max_retry_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0.0))
