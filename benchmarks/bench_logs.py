"""Log streaming: `get_all_logs` against the reference's `get_all_log_entries`.

Each contender streams a job's whole log in a fresh interpreter (`_logs_child.py`),
so the peak RSS it reports is its own, and checks the stream as it goes.

    python -m benchmarks.bench_logs [--quick]           # the comparison
    python -m benchmarks.bench_logs --sweep [--quick]   # get_all_logs by concurrency

The sweep streams the uniform and the bursty log at 0 and 50 ms with `concurrency`
1, 2, 4, 8 and 16 beside the reference; `DEFAULT_CONCURRENCY` is chosen from it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import anyio

from nexus_async import AsyncClient
from nexus_async._logs import DEFAULT_CONCURRENCY

from ._common import (
    Report,
    Row,
    Server,
    Target,
    bench_main,
    fmt_ratio,
    median,
    run_child,
    serve,
)

CONTENDERS = {
    "raw": "raw httpx pages + json.loads (the limit)",
    "ours": "nexus_async `get_all_logs` (default concurrency)",
    "ours1": "nexus_async `get_all_logs(concurrency=1)`",
    "ref": "reference `get_all_log_entries`",
}

# The log shapes, oldest segment first: (entries, per millisecond, gap after, in ms).
UNIFORM = [(1, 1, 0)]  # scaled to the count
SEVEN = [(1, 7, 0)]
# Bursts of 50 a millisecond and sparse stretches, with gaps of 5 and 20 seconds.
BURSTY = [(2_000, 50, 5_000), (500, 1, 20_000)]
LATENCIES = (0.0, 0.020, 0.050)
SWEEP = (1, 2, 4, 8, 16)  # the concurrencies of `--sweep`, contenders "c1" .. "c16"


def _label(contender: str) -> str:
    if contender in CONTENDERS:
        return CONTENDERS[contender]
    return f"nexus_async `get_all_logs(concurrency={contender[1:]})`"


def _child_args(contender: str) -> list[str]:
    """The child's `--child` (and `--concurrency`) for a contender."""
    if contender in CONTENDERS:
        return [contender]
    return ["ours", "--concurrency", contender[1:]]


# ----------------------------------------------------------------------- the parent


@dataclass
class Scenario:
    name: str
    count: int
    shape: list[tuple[int, int, int]]
    rounds: int
    timeout: float
    contenders: tuple[str, ...] = ("ref", "ours1", "ours")


@dataclass
class Outcome:
    """One contender's runs of one scenario."""

    runs: list[dict[str, Any] | None]
    expected: int

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [run for run in self.runs if run is not None and run["error"] is None]

    @property
    def rate(self) -> float:
        return median([run["entries"] / run["seconds"] for run in self.finished])

    @property
    def peak(self) -> float:
        return max((run["peak_rss_mb"] for run in self.finished), default=float("nan"))

    def lost_repeated(self) -> tuple[int, int]:
        """Worst run: entries missing, entries out of strict order (repeats)."""
        lost = max((max(0, self.expected - r["entries"]) for r in self.finished), default=0)
        repeated = max((r["out_of_order"] for r in self.finished), default=0)
        return lost, repeated

    def summary(self, timeout: float) -> tuple[str, str]:
        if self.finished:
            lost, repeated = self.lost_repeated()
            base = median([r["baseline_rss_mb"] for r in self.finished])
            return (
                f"{self.rate:,.0f} entries/s",
                f"peak RSS {self.peak:.0f} MB (at start {base:.0f} MB); lost {lost}, "
                f"repeated/out of order {repeated}; {len(self.finished)} run(s)",
            )
        failed = [run for run in self.runs if run is not None]
        if failed:
            run = failed[0]
            return (
                "stopped with an error",
                f"{run['error']} after {run['entries']:,} entries in {run['seconds']:.2f} s",
            )
        return ("did not finish", f"killed after {timeout:.0f} s")


def _make_log(server: Server, scenario: Scenario) -> str:
    async def create() -> str:
        async with AsyncClient(server.secret_key, base_url=server.base_url) as client:
            jobs = client.get_project(server.project_id).batch.jobs
            # Never starts, so the seeded entries are the whole log.
            options = server.fast_job_options(start_at_time=10**13 - 1)
            return (await jobs.create(scenario.name, options)).id

    job_id = anyio.run(create)
    if len(scenario.shape) == 1:
        server.seed_logs(job_id, scenario.count, per_ms=scenario.shape[0][1])
        return job_id
    start, left = 1_000_000_000, scenario.count
    while left > 0:
        for count, per_ms, gap in scenario.shape:
            count = min(count, left)
            if count == 0:
                break
            server.seed_logs(job_id, count, per_ms=per_ms, start_time=start)
            start += -(-count // per_ms) + gap
            left -= count
    return job_id


def _log_requests(server: Server) -> int:
    return sum(1 for r in server.requests() if r["method"] == "GET" and r["path"].endswith("/logs"))


def _run_scenario(server: Server, scenario: Scenario) -> dict[str, Outcome]:
    job_id = _make_log(server, scenario)
    args = [
        *("--base-url", server.base_url, "--key", server.secret_key),
        *("--project", server.project_id, "--job", job_id),
    ]
    names = list(scenario.contenders)
    outcomes = {name: Outcome([], scenario.count) for name in names}
    for index in range(scenario.rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            server.clear_requests()
            result = run_child(
                "benchmarks._logs_child", [*_child_args(name), *args], timeout=scenario.timeout
            )
            if result is not None:
                result["requests"] = _log_requests(server)
            outcomes[name].runs.append(result)
    return outcomes


def _scenarios(latency: float, quick: bool) -> list[Scenario]:
    slow = 1 + latency * 40  # the reference pays one round trip per page
    rounds = 1 if quick else 3
    found = [
        Scenario("100,000 uniform", 100_000, UNIFORM, rounds, 120.0 * slow),
        Scenario("100,000 at 7 per ms", 100_000, SEVEN, rounds, 120.0 * slow),
        Scenario("100,000 bursty with gaps", 100_000, BURSTY, rounds, 120.0 * slow),
    ]
    if latency == 0.0:
        found[0].contenders = ("raw", "ref", "ours1", "ours")
        big = ("ours1", "ours") if quick else ("ref", "ours1", "ours")
        found += [
            Scenario("1,000,000 uniform", 1_000_000, UNIFORM, 1, 900.0, big),
            Scenario("1,000 entries (one page)", 1_000, UNIFORM, 1, 30.0, ("ours1", "ours")),
            Scenario("1,500 entries in one ms", 1_500, [(1, 1_500, 0)], 1, 15.0, ("ref", "ours")),
        ]
    elif latency == 0.050 and not quick:
        found.append(Scenario("1,000,000 uniform", 1_000_000, UNIFORM, 1, 1_800.0))
    return found


Results = dict[tuple[float, str], dict[str, Outcome]]


def _measure(
    plan: dict[float, list[Scenario]],
) -> tuple[Results, dict[tuple[float, str], Scenario]]:
    results: Results = {}
    scenarios: dict[tuple[float, str], Scenario] = {}
    for latency, planned in plan.items():
        with serve(latency=latency) as server:
            for scenario in planned:
                key = (latency, scenario.name)
                scenarios[key] = scenario
                results[key] = _run_scenario(server, scenario)
    return results, scenarios


def _rows(results: Results, scenarios: dict[tuple[float, str], Scenario]) -> list[Row]:
    rows: list[Row] = []
    for key, outcomes in results.items():
        latency, name = key
        ref = outcomes.get("ref")
        seq = outcomes.get("ours1") or outcomes.get("c1")
        for contender, outcome in outcomes.items():
            value, detail = outcome.summary(scenarios[key].timeout)
            if contender != "ref" and ref is not None and ref.finished and outcome.finished:
                detail = f"{fmt_ratio(outcome.rate / ref.rate)} the reference; " + detail
            if outcome.finished:
                requests = median([r["requests"] for r in outcome.finished])
                detail += f"; {requests:.0f} requests"
                if contender.startswith("c") and seq is not None and seq.finished:
                    sequential = median([r["requests"] for r in seq.finished])
                    detail += f" ({requests / sequential:.2f}x sequential)"
            label = f"{latency * 1000:.0f} ms, {name}: {_label(contender)}"
            rows.append(Row(label, value, detail))
    return rows


def sweep(quick: bool) -> Report:
    """Log streaming by concurrency: get_all_logs with 1-16 requests in flight, 0 and 50 ms."""
    names = ("ref", *(f"c{n}" for n in SWEEP))
    plan = {
        latency: [
            Scenario(name, 100_000, shape, 1 if quick else 3, 120.0 * (1 + latency * 40), names)
            for name, shape in (("100,000 uniform", UNIFORM), ("100,000 bursty with gaps", BURSTY))
        ]
        for latency in (0.0, 0.050)
    }
    results, scenarios = _measure(plan)
    targets = []
    for latency in plan:
        for name in ("100,000 uniform", "100,000 bursty with gaps"):
            outcomes = results[(latency, name)]
            rates = {c: o.rate for c, o in outcomes.items() if c != "ref" and o.finished}
            best = max(rates, key=rates.__getitem__, default=None)
            targets.append(
                Target(
                    f"{latency * 1000:.0f} ms, {name}: the default is within 10% of the best",
                    best is not None
                    and rates.get(f"c{DEFAULT_CONCURRENCY}", 0) >= 0.9 * rates[best],
                    "n/a"
                    if best is None
                    else f"best concurrency={best[1:]} ({rates[best]:,.0f} entries/s); "
                    f"default {DEFAULT_CONCURRENCY}: "
                    f"{rates.get(f'c{DEFAULT_CONCURRENCY}', float('nan')):,.0f} entries/s",
                )
            )
    return Report(
        title="3b. Log streaming by concurrency",
        setup=(
            "as comparison 3 (each run in a fresh interpreter, the server another process "
            "adding 0 or 50 ms to every request, requests counted by the server); "
            "`get_all_logs(concurrency=N)` inside `async with`, N = "
            + ", ".join(map(str, SWEEP))
            + f"; the default is {DEFAULT_CONCURRENCY}."
        ),
        rows=_rows(results, scenarios),
        targets=targets,
    )


def run(quick: bool) -> Report:
    """Log streaming: get_all_logs (sequential and parallel) vs the reference, 0-50 ms away."""
    results, scenarios = _measure({lat: _scenarios(lat, quick) for lat in LATENCIES})
    rows = _rows(results, scenarios)

    def ratio(latency: float, name: str, a: str = "ours", b: str = "ref") -> float | None:
        found = results.get((latency, name), {})
        if a in found and b in found and found[a].finished and found[b].finished:
            return found[a].rate / found[b].rate
        return None

    def requests(latency: float, name: str, contender: str) -> float:
        runs = results[(latency, name)][contender].finished
        return median([r["requests"] for r in runs]) if runs else float("nan")

    shapes = ["100,000 uniform", "100,000 at 7 per ms", "100,000 bursty with gaps"]
    at50 = [ratio(0.050, s) for s in shapes]
    at0 = [ratio(0.0, s) for s in shapes]
    growth = (
        results[(0.0, "1,000,000 uniform")]["ours"].peak
        - results[(0.0, "100,000 uniform")]["ours"].peak
    )
    every = [o for outcomes in results.values() for name, o in outcomes.items() if name != "raw"]
    untied = [
        o
        for key, outcomes in results.items()
        if "one ms" not in key[1]
        for name, o in outcomes.items()
        if name.startswith("ours")
    ]
    worst = [o.lost_repeated() for o in untied]
    all_done = all(len(o.finished) == len(o.runs) for o in untied)
    ties = results[(0.0, "1,500 entries in one ms")]
    uniform_requests = requests(0.050, "100,000 uniform", "ours") / requests(
        0.050, "100,000 uniform", "ours1"
    )
    del every

    def show(values: list[float | None]) -> str:
        return " / ".join("n/a" if v is None else fmt_ratio(v) for v in values)

    return Report(
        title="3. Log streaming",
        setup=(
            "each run in a fresh interpreter (peak RSS is the contender's own; the "
            "reference's progress bar goes to /dev/null); the server is another process, "
            "adding 0, 20 or 50 ms to every request; entries seeded on a job that "
            "never starts; streams are checked in constant memory (strictly descending "
            "(createTime, id) ⇒ no repeats; count = seeded ⇒ none lost). The limit pages "
            "with raw httpx + json.loads and builds no models. Requests are counted by "
            f"the server. Default concurrency: {DEFAULT_CONCURRENCY}."
        ),
        rows=rows,
        targets=[
            Target(
                "50 ms: default ≥ 4x the reference's entries/s",
                all(r is not None and r >= 4.0 for r in at50),
                show(at50) + " (" + " / ".join(shapes) + ")",
            ),
            Target(
                "0 ms: default ≥ 2x the reference's entries/s",
                all(r is not None and r >= 2.0 for r in at0),
                show(at0),
            ),
            Target(
                "peak RSS growth 100,000 → 1,000,000 entries < 20 MB",
                growth < 20.0,
                f"{growth:+.1f} MB (default concurrency, 0 ms)",
            ),
            Target(
                "requests ≤ 1.15x the sequential count (uniform)",
                uniform_requests <= 1.15,
                f"{uniform_requests:.3f}x (50 ms, 100,000 uniform)",
            ),
            Target(
                "a log of at most one page costs ≤ 2 requests",
                requests(0.0, "1,000 entries (one page)", "ours") <= 2,
                f"{requests(0.0, '1,000 entries (one page)', 'ours'):.0f} requests",
            ),
            Target(
                "zero entries lost or repeated",
                all_done and all(lost == 0 and rep == 0 for lost, rep in worst),
                f"lost {max(w[0] for w in worst)}, repeated {max(w[1] for w in worst)}",
            ),
            Target(
                "≥ 1,000 entries in one ms: end, never loop",
                bool(ties["ours"].runs) and ties["ours"].runs[0] is not None,
                "ours: "
                + ties["ours"].summary(15.0)[0]
                + "; reference: "
                + ties["ref"].summary(15.0)[0],
            ),
        ],
    )


if __name__ == "__main__":
    if "--sweep" in sys.argv[1:]:
        bench_main(sweep, [arg for arg in sys.argv[1:] if arg != "--sweep"])
    else:
        bench_main(run)
