"""The retry decision as a table: no I/O, no clock, no randomness (jitter drawn as 0)."""

from __future__ import annotations

import pytest

from nexus_async import Backoff, RetryPolicy
from nexus_async._backoff import RETRY_STATUSES, Decision, Outcome, decide

# Delays 0.1, 0.2, 0.4, 0.8, capped at 1.0; four attempts within 10 s; Retry-After up to 5 s.
POLICY = RetryPolicy(
    attempts=4,
    total_time=10.0,
    backoff=Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.5),
    max_retry_after=5.0,
)

NO_ANSWER = Outcome(status=None, sent=True)
UNSENT = Outcome(status=None, sent=False)


def status(code: int, retry_after: float | None = None) -> Outcome:
    return Outcome(status=code, retry_after=retry_after)


# (case, outcome, idempotent, attempt, elapsed, pauses_client, expected)
ROWS: list[tuple[str, Outcome, bool, int, float, bool, Decision]] = [
    # What may be retried at all.
    ("idempotent, no answer", NO_ANSWER, True, 1, 0.0, True, Decision(True, 0.1)),
    ("idempotent, unsent", UNSENT, True, 1, 0.0, True, Decision(True, 0.1)),
    ("create, may have been sent", NO_ANSWER, False, 1, 0.0, True, Decision(False)),
    ("create, provably unsent", UNSENT, False, 1, 0.0, True, Decision(True, 0.1)),
    ("idempotent, 500", status(500), True, 1, 0.0, True, Decision(True, 0.1)),
    ("idempotent, 502", status(502), True, 1, 0.0, True, Decision(True, 0.1)),
    ("idempotent, 503", status(503), True, 1, 0.0, True, Decision(True, 0.1)),
    ("idempotent, 504", status(504), True, 1, 0.0, True, Decision(True, 0.1)),
    ("idempotent, 501 is final", status(501), True, 1, 0.0, True, Decision(False)),
    ("idempotent, 400 is final", status(400), True, 1, 0.0, True, Decision(False)),
    ("idempotent, 404 is final", status(404), True, 1, 0.0, True, Decision(False)),
    ("idempotent, 409 is final", status(409), True, 1, 0.0, True, Decision(False)),
    ("create, 503 reached the server", status(503), False, 1, 0.0, True, Decision(False)),
    # Backoff grows with the attempt and is capped.
    ("second retry", status(503), True, 2, 0.2, True, Decision(True, 0.2)),
    ("third retry", NO_ANSWER, True, 3, 0.5, True, Decision(True, 0.4)),
    ("attempts spent", status(503), True, 4, 1.0, True, Decision(False)),
    (
        "cap",
        NO_ANSWER,
        True,
        4,
        0.0,
        True,
        Decision(False),  # attempt 4 of 4: no fifth, whatever the delay
    ),
    # The total time budget: the next attempt must start within it.
    ("budget left", status(503), True, 1, 9.9, True, Decision(True, 0.1)),
    ("budget spent", status(503), True, 1, 9.95, True, Decision(False)),
    ("budget spent, unsent create", UNSENT, False, 2, 9.9, True, Decision(False)),
    # 429: Retry-After wins over backoff, and pauses the whole client by the same wait.
    ("429 with Retry-After", status(429, 0.7), True, 1, 0.0, True, Decision(True, 0.7, 0.7)),
    ("429 without Retry-After", status(429), True, 2, 0.0, True, Decision(True, 0.2, 0.2)),
    ("429 Retry-After 0", status(429, 0.0), True, 1, 0.0, True, Decision(True, 0.0, 0.0)),
    (
        "429 on a create pauses, no retry",
        status(429, 1.0),
        False,
        1,
        0.0,
        True,
        Decision(False, 0, 1),
    ),
    ("429 at the last attempt pauses", status(429, 1.0), True, 4, 0.0, True, Decision(False, 0, 1)),
    ("429 beyond the patience", status(429, 5.5), True, 1, 0.0, True, Decision(False)),
    ("429 at the patience", status(429, 5.0), True, 1, 0.0, True, Decision(True, 5.0, 5.0)),
    ("429 past the budget", status(429, 2.0), True, 1, 8.5, True, Decision(False, 0, 2.0)),
    ("429 elsewhere pauses nothing", status(429, 0.7), True, 1, 0.0, False, Decision(True, 0.7)),
    # Retry-After counts only on a 429.
    ("503 with Retry-After", status(503, 3.0), True, 1, 0.0, True, Decision(True, 0.1)),
]


@pytest.mark.parametrize(
    ("outcome", "idempotent", "attempt", "elapsed", "pauses_client", "expected"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_decision_table(
    outcome: Outcome,
    idempotent: bool,
    attempt: int,
    elapsed: float,
    pauses_client: bool,
    expected: Decision,
) -> None:
    decision = decide(
        POLICY,
        attempt=attempt,
        outcome=outcome,
        idempotent=idempotent,
        elapsed=elapsed,
        pauses_client=pauses_client,
        draw=0.0,
    )
    assert decision.retry == expected.retry
    assert decision.delay == pytest.approx(expected.delay)
    assert decision.pause == pytest.approx(expected.pause)


def test_jitter_scales_the_wait_and_the_pause_alike() -> None:
    """The 429 wait is computed once: the sleep and the client-wide pause are one number."""
    for draw in (0.0, 0.3, 0.999):
        decision = decide(
            POLICY, attempt=3, outcome=status(429), idempotent=True, elapsed=0.0, draw=draw
        )
        assert decision.delay == pytest.approx(0.4 * (1 - 0.5 * draw))
        assert decision.pause == decision.delay


def test_random_draws_stay_within_the_jitter() -> None:
    delays = [
        decide(POLICY, attempt=2, outcome=NO_ANSWER, idempotent=True, elapsed=0.0).delay
        for _ in range(200)
    ]
    assert all(0.1 <= d <= 0.2 for d in delays)
    assert len(set(delays)) > 1


def test_the_table_covers_every_retried_status() -> None:
    covered = {row[1].status for row in ROWS if row[2] and row[6].retry}
    assert covered >= RETRY_STATUSES
