"""Import time: `import nexus_async` against `import datature.nexus` and httpx alone.

`import nexus_async` loads next to nothing (its names are loaded on first use), so
what users do is measured too: `from nexus_async import AsyncClient`, and that plus
making the first client and reaching a project's jobs, against the reference's
`Client(key).get_project(...).batch.jobs`.

Each contender runs in a fresh interpreter, timed inside it with `perf_counter`,
after one untimed warm-up run per contender so every one loads from compiled
bytecode (the children run without PYTHONDONTWRITEBYTECODE, as after a pip install).

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

# Runs in the child: time the statement, then name what it pulled in from the watch list.
_CHILD = """
import json, sys, time
{hide}
before = set(sys.modules)
started = time.perf_counter()
{statement}
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


# What users run first: the client, one project, its jobs (no request is sent).
OUR_CLIENT = (
    "from nexus_async import AsyncClient; "
    "AsyncClient('sk_bench').get_project('proj_bench').batch.jobs"
)
REFERENCE_CLIENT = (
    "from datature.nexus import Client; Client('sk_bench').get_project('proj_bench').batch.jobs"
)


def _import_once(statement: str, hide_click: bool) -> dict[str, object]:
    code = _CHILD.format(statement=statement, hide=HIDE_CLICK if hide_click else "")
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
    rounds, budget = (5, 30.0) if quick else (15, 90.0)
    import_ours = "`import nexus_async` (httpx without its CLI: a plain install)"
    import_ref = "`import datature.nexus` (the reference)"
    client_ours = "`from nexus_async import AsyncClient` + first client (a plain install)"
    client_ref = "`from datature.nexus import Client` + first client (the reference)"
    from_ours = "`from nexus_async import AsyncClient` (a plain install)"
    here = "`from nexus_async import AsyncClient` + first client (this environment: httpx CLI)"
    contenders: dict[str, tuple[str, bool]] = {
        import_ours: ("import nexus_async", True),
        from_ours: ("from nexus_async import AsyncClient", True),
        client_ours: (OUR_CLIENT, True),
        here: (OUR_CLIENT, False),
        import_ref: ("import datature.nexus", False),
        client_ref: (REFERENCE_CLIENT, False),
        "`import httpx` (a plain install)": ("import httpx", True),
        "`import httpx` (this environment)": ("import httpx", False),
    }
    for statement, hide in contenders.values():
        _import_once(statement, hide)  # warm-up: write bytecode, fill the page cache

    def measure(statement: str, hide: bool) -> Callable[[], dict[str, object]]:
        return lambda: _import_once(statement, hide)

    samples = alternate(
        {name: measure(*spec) for name, spec in contenders.items()}, rounds=rounds, budget=budget
    )
    times = {
        name: median([float(str(r["seconds"])) for r in runs]) for name, runs in samples.items()
    }
    ref, ref_client = times[import_ref], times[client_ref]
    # A plain install must pull in none of the watched modules, even with a client
    # made; here, rich may come in only through httpx's own CLI, never the server or
    # our CLI.
    plain_hits = sorted(
        {m for name in (import_ours, client_ours) for r in samples[name] for m in r["watched"]}  # type: ignore[attr-defined]
    )
    here_hits = sorted({m.split(".")[0] for r in samples[here] for m in r["watched"]})  # type: ignore[attr-defined]
    here_ok = set(here_hits) <= {"rich"} and all(r["httpx_cli"] for r in samples[here])

    def compared(name: str, value: float) -> str:
        if "first client" in name:
            return f"{fmt_ratio(value / ref_client)} the reference's import + first client"
        return f"{fmt_ratio(value / ref)} the reference's import"

    rows = [Row(name, fmt_seconds(value), compared(name, value)) for name, value in times.items()]
    return Report(
        title="6. Import",
        setup=(
            f"median of {len(next(iter(samples.values())))} fresh interpreters per row, "
            "timed inside the child after a warm-up run; contenders alternate. "
            "'A plain install' hides click so that httpx skips its optional CLI. "
            "First client: `AsyncClient(key).get_project(id).batch.jobs` (default https "
            "base URL) against the reference's `Client(key).get_project(id).batch.jobs`; "
            "no request is sent."
        ),
        rows=rows,
        targets=[
            Target(
                "`import nexus_async` ≤ 0.2x the reference's import",
                times[import_ours] <= 0.2 * ref,
                f"plain install {fmt_ratio(times[import_ours] / ref)}",
            ),
            Target(
                "import + first client under a third of the reference's",
                times[client_ours] < ref_client / 3,
                f"plain install {fmt_ratio(times[client_ours] / ref_client)}, this environment "
                f"{fmt_ratio(times[here] / ref_client)}",
            ),
            Target(
                "`import nexus_async` and a first client import no server, CLI or rich",
                not plain_hits and here_ok,
                f"plain install: {', '.join(plain_hits) or 'none'}; this environment: "
                + (", ".join(here_hits) + " (through httpx's CLI)" if here_hits else "none"),
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
