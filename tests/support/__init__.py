"""Helpers shared by every test suite: one fast retry policy, test images, waiting.

Each suite's own helper modules (`tests/sdk/live.py`, `tests/server/helpers.py`,
`tests/reliability/support.py`) build on these instead of keeping copies.
"""

from __future__ import annotations

from .images import data_url, distinct_pngs, png_bytes, png_data_url, write_pngs
from .retry import FAST_RETRY
from .waiting import Changes

# A webhook endpoint nobody listens on: deliveries fail at once (connection refused).
DEAD_ENDPOINT = "http://127.0.0.1:9/unreachable"

__all__ = [
    "DEAD_ENDPOINT",
    "FAST_RETRY",
    "Changes",
    "data_url",
    "distinct_pngs",
    "png_bytes",
    "png_data_url",
    "write_pngs",
]
