"""Wall-clock helpers shared by the server's modules."""

from __future__ import annotations

import time
import uuid

__all__ = ["new_id", "now_ms"]


def now_ms() -> int:
    """Milliseconds since the Unix epoch, the spec's timestamp unit."""
    return time.time_ns() // 1_000_000


def new_id(prefix: str) -> str:
    """A fresh id with the spec's prefix, e.g. ``batchjob_<uuid4>``."""
    return f"{prefix}_{uuid.uuid4()}"
