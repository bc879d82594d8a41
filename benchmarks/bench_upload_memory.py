"""Peak memory of `datasets.create` on a large file: it must not grow with the file.

    python benchmarks/bench_upload_memory.py [--size-mb 200] [--timeout 600]

Writes an NDJSON dataset file of `--size-mb` MB (in a temporary folder, removed after),
starts the local Nexus server in a child process (so the server's memory, which holds
the uploaded file, is not counted), and creates the dataset: one streaming pass that
validates every line and computes the CRC32C, then a streamed upload. Meanwhile this
process's resident memory is sampled every 5 ms. Prints a markdown table; the target
is a peak growth under 50 MB, and the exit status is 1 when it is missed.
Linux only (reads /proc/self/statm). Not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from nexus_async import AsyncClient, RetryPolicy

TARGET_MB = 50.0
_PAGE = os.sysconf("SC_PAGE_SIZE")
_SERVER = """
import json, sys, anyio
from nexus_async.server import LocalNexus

async def main() -> None:
    async with LocalNexus(max_upload_bytes=int(sys.argv[1])) as nexus:
        print(json.dumps({"base_url": nexus.base_url, "key": nexus.secret_key,
                          "project": nexus.project_id}), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin

anyio.run(main)
"""


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def write_dataset(path: Path, size: int) -> int:
    """Write at least `size` bytes of NDJSON items, 1 MiB at a time; return the item count."""
    count = 0
    written = 0
    with path.open("wb") as out:
        while written < size:
            block = bytearray()
            while len(block) < 1 << 20:
                block += (
                    b'{"kind":"Image","url":"https://cdn.example.com/batch/%09d.jpg"}\n' % count
                )
                count += 1
            out.write(block)
            written += len(block)
    return count


async def start_server(max_upload: int) -> tuple[Process, dict[str, Any]]:
    process = await anyio.open_process(
        [sys.executable, "-c", _SERVER, str(max_upload)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        line += await process.stdout.receive(1)
    return process, json.loads(line)


async def stop_server(process: Process) -> None:
    with anyio.move_on_after(10, shield=True) as scope:
        if process.stdin is not None:
            await process.stdin.aclose()
        await process.wait()
    if scope.cancelled_caught:
        process.kill()


async def measure(size_mb: int, timeout: float) -> bool:
    size = size_mb * 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "items.ndjson"
        items = write_dataset(path, size)
        file_bytes = path.stat().st_size
        process, server = await start_server(max(file_bytes, 256 << 20))
        try:
            with anyio.fail_after(timeout):
                async with AsyncClient(
                    server["key"],
                    base_url=server["base_url"],
                    timeout=120.0,
                    retry=RetryPolicy(attempts=1),
                ) as client:
                    datasets = client.get_project(server["project"]).batch.datasets
                    baseline = rss_bytes()
                    peak_before = peak_rss_bytes()
                    peak = baseline
                    done = anyio.Event()

                    async def sample() -> None:
                        nonlocal peak
                        while not done.is_set():
                            peak = max(peak, rss_bytes())
                            await anyio.sleep(0.005)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(sample)
                        started = time.perf_counter()
                        dataset = await datasets.create("bench", path)
                        elapsed = time.perf_counter() - started
                        done.set()
                    peak = max(peak, rss_bytes())
                    ready = await datasets.wait_until_done(dataset.id, interval=0.5)
        finally:
            await stop_server(process)

    growth = (peak - baseline) / 1e6
    peak_growth = max(0, peak_rss_bytes() - max(peak_before, baseline)) / 1e6
    ok = growth < TARGET_MB
    rows = [
        ("file", f"{file_bytes / 1e6:.1f} MB, {items:,} items"),
        ("create (check + CRC32C pass, then upload)", f"{elapsed:.1f} s"),
        ("throughput (file bytes / create time)", f"{file_bytes / 1e6 / elapsed:.0f} MB/s"),
        ("server's item count after processing", f"{ready.status.item_count:,}"),
        ("RSS before", f"{baseline / 1e6:.1f} MB"),
        ("peak RSS during create (sampled every 5 ms)", f"{peak / 1e6:.1f} MB"),
        (
            "peak RSS growth",
            f"**{growth:.1f} MB** (target < {TARGET_MB:.0f} MB: {'met' if ok else 'MISSED'})",
        ),
        ("ru_maxrss growth (kernel's high-water mark)", f"{peak_growth:.1f} MB"),
    ]
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return ok and ready.status.item_count == items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    args = parser.parse_args()
    sys.exit(0 if anyio.run(measure, args.size_mb, args.timeout) else 1)


if __name__ == "__main__":
    main()
