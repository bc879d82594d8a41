"""Create a batch job, wait for it with progress, and read its errors.

python examples/quickstart.py
"""

from __future__ import annotations

import anyio

from nexus_async import Job

from _setup import project


async def main() -> None:
    async with project() as setup:
        jobs = setup.batch.jobs
        job = await jobs.create("quickstart", setup.job_options())
        print(f"created {job.id}")

        def progress(snapshot: Job) -> None:
            items = snapshot.status.items
            status = snapshot.status.message
            print(f"  {status}: {items.predicted} predicted, {items.delivered} delivered")

        job = await jobs.wait_until_done(job.id, interval=1.0, timeout=600, on_update=progress)
        print(f"{job.id} ended {job.status.overview}")
        async for entry in jobs.get_all_logs(job.id, {"min_level": "Error"}):
            print(f"  error on {entry.item or 'the job'}: {entry.reason}")


if __name__ == "__main__":
    anyio.run(main)
