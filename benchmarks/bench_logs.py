"""Log streaming: `get_all_logs` against the reference's `get_all_log_entries`.

Each contender streams a job's whole log in a fresh interpreter (`_logs_child.py`),
so the peak RSS it reports is its own, and checks the stream as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio

from nexus_async import AsyncClient

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
    "ours": "nexus_async `get_all_logs`",
    "ref": "reference `get_all_log_entries`",
}


# ----------------------------------------------------------------------- the parent


@dataclass
class Scenario:
    name: str
    count: int
    per_ms: int
    rounds: int
    timeout: float
    with_limit: bool = True  # also run the raw-httpx limit (which knows no tie rule)


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
    server.seed_logs(job_id, scenario.count, per_ms=scenario.per_ms)
    return job_id


def _run_scenario(server: Server, scenario: Scenario) -> dict[str, Outcome]:
    job_id = _make_log(server, scenario)
    args = [
        *("--base-url", server.base_url, "--key", server.secret_key),
        *("--project", server.project_id, "--job", job_id),
    ]
    names = [name for name in CONTENDERS if scenario.with_limit or name != "raw"]
    outcomes = {name: Outcome([], scenario.count) for name in names}
    for index in range(scenario.rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            result = run_child("benchmarks._logs_child", [name, *args], timeout=scenario.timeout)
            outcomes[name].runs.append(result)
    return outcomes


def run(quick: bool) -> Report:
    """Log streaming: get_all_logs vs the reference over 100k and 1M entries, ties."""
    scenarios = [
        Scenario("100,000 entries", 100_000, 1, 2 if quick else 5, 120.0),
        Scenario("1,000,000 entries", 1_000_000, 1, 2, 600.0),
        Scenario("100,000 entries, 7 per ms", 100_000, 7, 1, 120.0, with_limit=False),
        Scenario("1,500 entries in one ms", 1_500, 1_500, 1, 15.0, with_limit=False),
    ]
    if quick:
        scenarios[1] = Scenario("300,000 entries", 300_000, 1, 1, 300.0)
    results: dict[str, dict[str, Outcome]] = {}
    with serve() as server:
        for scenario in scenarios:
            results[scenario.name] = _run_scenario(server, scenario)

    rows: list[Row] = []
    for scenario in scenarios:
        for name, outcome in results[scenario.name].items():
            value, detail = outcome.summary(scenario.timeout)
            limit = results[scenario.name].get("raw")
            if name != "raw" and limit is not None and limit.finished and outcome.finished:
                detail = f"{outcome.rate / limit.rate:.0%} of the limit; " + detail
            rows.append(Row(f"{scenario.name}: {CONTENDERS[name]}", value, detail))

    small, large = scenarios[0].name, scenarios[1].name
    ref_of_limit = [
        results[s]["ref"].rate / results[s]["raw"].rate
        for s in (small, large)
        if results[s]["ref"].finished and results[s]["raw"].finished
    ]
    ratios = [
        results[s]["ours"].rate / results[s]["ref"].rate
        for s in (small, large)
        if results[s]["ref"].finished and results[s]["ours"].finished
    ]
    growth = results[large]["ours"].peak - results[small]["ours"].peak
    ours_all = [results[s.name]["ours"] for s in scenarios[:3]]
    worst = [o.lost_repeated() for o in ours_all]
    all_done = all(len(o.finished) == len(o.runs) for o in ours_all)
    ties = results[scenarios[3].name]
    return Report(
        title="3. Log streaming",
        setup=(
            "each run in a fresh interpreter (peak RSS is the contender's own; the "
            "reference's progress bar goes to /dev/null); entries seeded on a job that "
            "never starts; streams are checked in constant memory (strictly descending "
            "(createTime, id) ⇒ no repeats; count = seeded ⇒ none lost). The limit pages "
            "with raw httpx + json.loads and builds no models: the server's page rate."
        ),
        rows=rows,
        targets=[
            Target(
                "≥ 2x the reference's throughput",
                bool(ratios) and min(ratios) >= 2.0,
                " / ".join(fmt_ratio(r) for r in ratios)
                + f" ({small} / {large}); the reference already runs at "
                + " / ".join(f"{r:.0%}" for r in ref_of_limit)
                + " of the limit",
            ),
            Target(
                f"{large}: peak RSS within 20 MB of {small}",
                growth <= 20.0,
                f"+{growth:.1f} MB",
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
                + ties["ours"].summary(scenarios[3].timeout)[0]
                + "; reference: "
                + ties["ref"].summary(scenarios[3].timeout)[0],
            ),
        ],
    )


if __name__ == "__main__":
    bench_main(run)
