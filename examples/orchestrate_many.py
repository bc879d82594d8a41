"""Start many jobs at once and handle each as soon as it finishes.

All jobs are watched by one coalescing poller: a tick costs about one list
request, not one request per job.

    python examples/orchestrate_many.py
"""

from __future__ import annotations

import anyio

from _setup import project

JOBS = 25


async def main() -> None:
    async with project(items=4) as setup:
        jobs = setup.batch.jobs
        # Create concurrently; the client queues requests beyond its connection limit.
        created: list[str] = []

        async def create(index: int) -> None:
            job = await jobs.create(f"fan-out-{index}", setup.job_options())
            created.append(job.id)

        async with anyio.create_task_group() as tg:
            for index in range(JOBS):
                tg.start_soon(create, index)
        print(f"created {len(created)} jobs")

        async with jobs.as_completed(created, interval=1.0, timeout=600) as finished:
            async for job in finished:
                items = job.status.items
                print(f"{job.name:<12} {job.status.overview}: {items.delivered} delivered")


if __name__ == "__main__":
    anyio.run(main)
