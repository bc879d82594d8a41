"""Follow a running job's log into an NDJSON file, each entry exactly once.

python examples/stream_logs.py [out.ndjson]
"""

from __future__ import annotations

import json
import sys

import anyio

from nexus_async import unstructure

from _setup import project


async def main(path: str) -> None:
    async with project(items=30) as setup:
        jobs = setup.batch.jobs
        job = await jobs.create("logged", setup.job_options())
        count = 0
        async with await anyio.open_file(path, "w") as out:
            async for entry in jobs.follow_logs(job.id, interval=0.5):
                await out.write(json.dumps(unstructure(entry)) + "\n")
                count += 1
        print(f"wrote {count} log entries of {job.id} to {path}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "job-log.ndjson")
