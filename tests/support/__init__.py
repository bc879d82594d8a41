"""Helpers shared by every test suite.

One fast retry policy, raw HTTP clients sharing one TLS context, test images, and
waits for the condition itself (a change, a task's end) instead of sleeps. Each suite's
own helper modules (`tests/sdk/live.py`, `tests/server/helpers.py`,
`tests/reliability/support.py`) build on these instead of keeping copies.
"""

from __future__ import annotations

from .http import TLS, raw_client
from .images import data_url, distinct_pngs, png_bytes, png_data_url, write_pngs
from .retry import FAST_RETRY
from .tasks import job_task_running, sdk_tasks, until_job_task_ends, until_sdk_tasks_end
from .waiting import Changes

# A webhook endpoint nobody listens on: deliveries fail at once (connection refused).
DEAD_ENDPOINT = "http://127.0.0.1:9/unreachable"

__all__ = [
    "DEAD_ENDPOINT",
    "FAST_RETRY",
    "TLS",
    "Changes",
    "data_url",
    "distinct_pngs",
    "job_task_running",
    "png_bytes",
    "png_data_url",
    "raw_client",
    "sdk_tasks",
    "until_job_task_ends",
    "until_sdk_tasks_end",
    "write_pngs",
]
