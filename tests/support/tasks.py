"""The tasks the SDK and the local server run, read through anyio's public task list.

Tests wait for a task to end (the condition itself) instead of sleeping and hoping it
did. Nothing signals a task's end to an outsider, so these waits re-read the task list
about every millisecond, within a deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

_SERVER = "nexus_async.server"


def sdk_tasks() -> list[str]:
    """Names of the tasks the SDK started that are still running (the server's excepted)."""
    return [
        task.name
        for task in anyio.get_running_tasks()
        if task.name and task.name.startswith("nexus_async.") and not task.name.startswith(_SERVER)
    ]


def job_task_running(job_id: str) -> bool:
    """Whether the local server's task that runs `job_id` (named after it) still runs."""
    return any(task.name == f"{_SERVER}.job {job_id}" for task in anyio.get_running_tasks())


async def _until(done: Callable[[], bool], timeout: float) -> None:
    with anyio.fail_after(timeout):
        while not done():  # noqa: ASYNC110 (no event tells an outsider that a task ended)
            await anyio.sleep(0.001)


async def until_sdk_tasks_end(timeout: float = 5.0) -> None:
    """Wait until no task of the SDK runs; `TimeoutError` after `timeout` seconds."""
    await _until(lambda: not sdk_tasks(), timeout)


async def until_job_task_ends(job_id: str, timeout: float = 5.0) -> None:
    """Wait until the server's task of `job_id` ended: the job can change no more."""
    await _until(lambda: not job_task_running(job_id), timeout)
