"""Import time: `import nexus_async` against `import datature.nexus` and httpx alone.

Each import runs in a fresh interpreter, timed inside it with `perf_counter`, after
one untimed warm-up run per module so every contender loads from compiled bytecode
(the children run without PYTHONDONTWRITEBYTECODE, as after a pip install).

httpx imports its optional command line (`httpx._main`: click, pygments, rich)
whenever all three are installed, as they are in the benchmark environment (the
`cli` extra brings rich, the reference SDK brings click); a plain
`pip install nexus-async` has none of them. Both situations are measured: the
second hides `click` from the child (`sys.modules["click"] = None`), which makes
httpx skip its command line exactly as when click is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

from ._common import Report, Row, Target, alternate, bench_main, fmt_ratio, fmt_seconds, median

# Runs in the child: time the import, then name what it pulled in from the watch list.
_CHILD = """
import json, sys, time
{hide}
before = set(sys.modules)
started = time.perf_counter()
import {module}
seconds = time.perf_counter() - started
watched = ("nexus_async.server", "nexus_async.cli", "rich", "starlette", "hypercorn")
prefixes = tuple(w + "." for w in watched)
added = sorted(m for m in set(sys.modules) - before if m in watched or m.startswith(prefixes))
httpx_cli = "httpx._main" in sys.modules
print(json.dumps({{"seconds": seconds, "watched": added, "httpx_cli": httpx_cli}}))
"""

HIDE_CLICK = 'sys.modules["click"] = None  # as if click were not installed'


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _import_once(module: str, hide_click: bool) -> dict[str, object]:
    code = _CHILD.format(module=module, hide=HIDE_CLICK if hide_click else "")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> Report:
    """Import time: nexus_async vs datature.nexus vs httpx, fresh interpreters."""
    rounds, budget = (5, 20.0) if quick else (15, 60.0)
    contenders: dict[str, tuple[str, bool]] = {
        "`import nexus_async` (httpx without its CLI: a plain install)": ("nexus_async", True),
        "`import nexus_async` (this environment: httpx imports its CLI)": ("nexus_async", False),
        "`import datature.nexus` (the reference)": ("datature.nexus", False),
        "`import httpx` (a plain install)": ("httpx", True),
        "`import httpx` (this environment)": ("httpx", False),
    }
    for module, hide in contenders.values():
        _import_once(module, hide)  # warm-up: write bytecode, fill the page cache

    def measure(module: str, hide: bool) -> Callable[[], dict[str, object]]:
        return lambda: _import_once(module, hide)

    samples = alternate(
        {name: measure(*spec) for name, spec in contenders.items()}, rounds=rounds, budget=budget
    )
    times = {
        name: median([float(str(r["seconds"])) for r in runs]) for name, runs in samples.items()
    }
    plain, here, ref, _, _ = times.values()
    plain_name, here_name = list(samples)[:2]
    # A plain install must pull in none of the watched modules; here, rich may come in
    # only through httpx's own CLI, never the server or our CLI.
    plain_hits = sorted({m for r in samples[plain_name] for m in r["watched"]})  # type: ignore[attr-defined]
    here_hits = sorted(
        {m.split(".")[0] for r in samples[here_name] for m in r["watched"]}  # type: ignore[attr-defined]
    )
    here_ok = set(here_hits) <= {"rich"} and all(r["httpx_cli"] for r in samples[here_name])
    rows = [
        Row(name, fmt_seconds(value), f"{fmt_ratio(value / ref)} the reference's")
        for name, value in times.items()
    ]
    return Report(
        title="6. Import",
        setup=(
            f"median of {len(next(iter(samples.values())))} fresh interpreters per row, "
            "import timed inside the child after a warm-up run; contenders alternate. "
            "'A plain install' hides click so that httpx skips its optional CLI."
        ),
        rows=rows,
        targets=[
            Target(
                "under a third of the reference's",
                plain < ref / 3,
                f"plain install {fmt_ratio(plain / ref)}, this environment {fmt_ratio(here / ref)}",
            ),
            Target(
                "`import nexus_async` imports no server, CLI or rich",
                not plain_hits and here_ok,
                f"plain install: {', '.join(plain_hits) or 'none'}; this environment: "
                + (", ".join(here_hits) + " (through httpx's CLI)" if here_hits else "none"),
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
