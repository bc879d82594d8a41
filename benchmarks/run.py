"""Run every comparison and print one markdown report.

    .venv/bin/python -m benchmarks [--quick] [--only overhead,fanout,...] [--out FILE]

Needs the `bench` extra (`pip install -e '.[dev,bench]'`): the reference SDK
`datature==1.12.2`. Every comparison starts its own local server process; nothing
leaves the loopback interface. The full run takes about 11 minutes on 2 cores
(662 s measured), `--quick` fewer rounds of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from . import bench_decode, bench_fanout, bench_import, bench_logs, bench_overhead, bench_waiting
from ._common import Report, pin_client, render, time_limit

BENCHMARKS: dict[str, Callable[[bool], Report]] = {
    "overhead": bench_overhead.run,
    "fanout": bench_fanout.run,
    "logs": bench_logs.run,
    "decode": bench_decode.run,
    "waiting": bench_waiting.run,
    "import": bench_import.run,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 2 minutes)")
    parser.add_argument(
        "--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS), default=""
    )
    parser.add_argument("--out", help="also write the markdown report to this file")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    pin_client()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.monotonic()
    reports = []
    with time_limit(600.0 if args.quick else 1800.0):  # a backstop: the full run takes ~6 min
        for name in chosen:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            begun = time.monotonic()
            reports.append(BENCHMARKS[name](args.quick))
            print(f"  {name}: {time.monotonic() - begun:.0f} s", file=sys.stderr, flush=True)
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    text = render(reports, command=command, elapsed=time.monotonic() - started)
    text += f"\n\nLoad average (1 min) when the run started: {load:.2f}\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()
