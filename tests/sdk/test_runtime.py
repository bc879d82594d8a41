"""The client's runtime: its background tasks never reach into the caller's code."""

from __future__ import annotations

import logging

import anyio
import pytest

from nexus_async._runtime import Runtime


async def test_a_failing_background_task_neither_cancels_the_caller_nor_is_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = Runtime()
    failed = anyio.Event()
    reached_the_end = False

    async def broken() -> None:
        failed.set()
        raise ValueError("a bug in a background task")

    await runtime.open()
    try:
        with caplog.at_level(logging.ERROR, logger="nexus_async"):
            runtime.start_soon(broken)
            with anyio.fail_after(5):
                await failed.wait()
            # Checkpoints after the failure: a cancelled caller would raise here.
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
            reached_the_end = True
    finally:
        await runtime.exit()
    assert reached_the_end
    records = [r for r in caplog.records if "background task" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], ValueError)
