"""The retry policy of the test clients: real retries, without idle backoff."""

from __future__ import annotations

from nexus_async import Backoff, RetryPolicy

# Four attempts like the SDK's default, so retry counts are the ones users see; pauses
# of 1-10 ms keep a test that rides out faults from sleeping. The budget is generous so
# a retried request still fits on a loaded machine.
FAST_RETRY = RetryPolicy(attempts=4, total_time=10.0, backoff=Backoff(initial=0.001, maximum=0.01))
