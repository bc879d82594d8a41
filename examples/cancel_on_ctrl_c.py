"""Run a batch of jobs and, on Ctrl-C, cancel the ones not finished yet, then exit 130.

    .venv/bin/python examples/cancel_on_ctrl_c.py      # press Ctrl-C while it waits

A script that orchestrates jobs owns them: stopping it should not leave them running
in the project. Here the jobs start one second apart (spreading the load, as a
nightly batch might); Ctrl-C cancels the wait, and the `finally` block then cancels
every job that had not finished, all at once, in a shielded scope (so that the
Ctrl-C that is unwinding the program does not cancel the cancels too) bounded by a
few seconds (so that a dead API cannot hold the program).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import anyio

from nexus_async import Jobs, NexusError

from _setup import project

JOBS = 4
STAGGER_MS = 1000
CANCEL_SECONDS = 5.0


async def cancel_all(jobs: Jobs, job_ids: Sequence[str]) -> int:
    """Cancel `job_ids` concurrently; return how many the API cancelled.

    A job that finished between Ctrl-C and its cancel comes back without
    `cancelled_at`: it is not counted.
    """
    accepted = 0

    async def cancel(job_id: str) -> None:
        nonlocal accepted
        try:
            job = await jobs.cancel(job_id)
        except NexusError as exc:  # one failure must not stop the others
            print(f"could not cancel {job_id}: {exc}", file=sys.stderr)
        else:
            if job.status.cancelled_at is not None:
                accepted += 1
            else:
                print(f"{job.name} had already ended {job.status.overview}", flush=True)

    async with anyio.create_task_group() as tg:
        for job_id in job_ids:
            tg.start_soon(cancel, job_id)
    return accepted


async def main() -> None:
    async with project(items=10) as setup:
        jobs = setup.batch.jobs
        now = int(time.time() * 1000)
        started: list[str] = []
        for index in range(JOBS):
            options = {**setup.job_options(), "start_at_time": now + index * STAGGER_MS}
            started.append((await jobs.create(f"staggered-{index}", options)).id)
        print(f"started {len(started)} jobs: {' '.join(started)}", flush=True)
        print("Ctrl-C cancels the unfinished ones", flush=True)

        finished: set[str] = set()
        try:
            async with jobs.as_completed(started, interval=0.5, timeout=600) as done:
                async for job in done:
                    finished.add(job.id)
                    print(f"{job.name} {job.status.overview}", flush=True)
        finally:
            unfinished = [job_id for job_id in started if job_id not in finished]
            if unfinished:
                with anyio.move_on_after(CANCEL_SECONDS, shield=True):
                    accepted = await cancel_all(jobs, unfinished)
                    print(f"cancelled {accepted} unfinished jobs", flush=True)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
