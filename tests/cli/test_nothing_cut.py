"""Nothing is silently cut: whole logs, every listed item or a cursor, full-width cells."""

from __future__ import annotations

import io
import json
import time

import pytest
from rich.console import Console

from nexus_async.cli import _listing
from nexus_async.cli._render import table

from .helpers import NEVER, Server, command, make_job, run, run_json

ENTRIES = 2_500


@pytest.fixture
def seeded_job(env: object, server: Server, capsys: pytest.CaptureFixture[str]) -> str:
    """A job that never starts, with ENTRIES log entries, three per millisecond."""
    portal, nexus = server
    job_id: str = make_job(server, capsys, start_at_time=NEVER)["id"]
    portal.call(lambda: nexus.seed_logs(job_id, ENTRIES, per_ms=3))
    return job_id


def test_logs_prints_the_whole_log_oldest_first(
    seeded_job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "jobs", "logs", seeded_job)
    assert code == 0, err
    assert len(out.splitlines()) == ENTRIES
    assert err == ""

    entries = run_json(capsys, "jobs", "logs", seeded_job)
    assert len(entries) == ENTRIES
    assert len({e["id"] for e in entries}) == ENTRIES
    keys = [(e["createTime"], e["id"]) for e in entries]
    assert keys == sorted(keys), "oldest first, ties in write order"


def test_logs_max_entries_says_it_stopped(
    seeded_job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "jobs", "logs", seeded_job, "--max-entries", "10", "--json")
    assert code == 0
    first = [json.loads(line) for line in out.splitlines()]
    assert len(first) == 10
    assert "stopped after 10 entries" in err
    everything = run_json(capsys, "jobs", "logs", seeded_job)
    assert first == everything[:10]

    code, out, err = run(capsys, "jobs", "logs", seeded_job, "--max-entries", str(ENTRIES))
    assert len(out.splitlines()) == ENTRIES
    assert err == "", "nothing was left out, so nothing is said"


def test_logs_follow_continues_without_repeats(
    env: object, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    portal, nexus = server
    job = make_job(server, capsys)
    assert run(capsys, "jobs", "wait", job["id"], "--interval", "0.2")[0] == 0
    portal.call(lambda: nexus.seed_logs(job["id"], 1_200, per_ms=4))
    whole = run_json(capsys, "jobs", "logs", job["id"])
    followed = run_json(capsys, "jobs", "logs", job["id"], "--follow")
    assert [e["id"] for e in followed] == [e["id"] for e in whole]


def test_list_pages_through_everything(
    env: object,
    server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(3):
        make_job(server, capsys, start_at_time=NEVER)
    expected = [job["id"] for job in run_json(capsys, "jobs", "list")]
    assert len(expected) >= 3
    monkeypatch.setattr(_listing, "PAGE", 2)  # several pages for a few jobs
    code, out, err = run(capsys, "jobs", "list", "--json")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == expected
    assert err == ""


def test_list_limit_leaves_a_usable_cursor_on_stderr(
    env: object, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        make_job(server, capsys, start_at_time=NEVER)
    expected = [job["id"] for job in run_json(capsys, "jobs", "list")]
    code, out, err = run(capsys, "jobs", "list", "--limit", "2", "--json")
    assert code == 0
    first = [json.loads(line)["id"] for line in out.splitlines()]
    assert first == expected[:2]
    hint = err.strip()
    assert hint.startswith("more jobs: nexus-async jobs list --limit 2 --page ")
    rest: list[str] = []
    for _ in range(len(expected)):  # follow the hints to the end
        argv = hint.removeprefix("more jobs: nexus-async ").split()
        code, out, err = run(capsys, *argv, "--json")
        rest += [json.loads(line)["id"] for line in out.splitlines()]
        hint = err.strip()
        if not hint:
            break
    assert first + rest == expected


def test_tables_in_a_narrow_pipe_keep_ids_and_counts(
    env: object, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_job(server, capsys)
    assert run(capsys, "jobs", "wait", job["id"], "--interval", "0.2")[0] == 0
    _, nexus = server
    result = command(nexus, "jobs", "list", columns=60)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(job["id"]))
    cells = row.split()
    assert cells[0] == job["id"]
    assert "…" not in result.stdout
    assert "3" in cells, "the failed count is whole"

    detail = command(nexus, "jobs", "get", job["id"], columns=60)
    assert detail.returncode == 0, detail.stderr
    assert "ExistingDeployment(" not in detail.stdout, "fields, never a repr"
    assert nexus.deployment_id in detail.stdout
    assert "…" not in detail.stdout


def test_logs_across_a_gap_in_few_requests(
    env: object, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two bursts a day apart: every entry once, in order, in a bounded number of pages."""
    portal, nexus = server
    job_id = make_job(server, capsys, start_at_time=NEVER)["id"]
    day_ago = int(time.time() * 1000) - 86_400_000
    portal.call(lambda: nexus.seed_logs(job_id, 700, per_ms=2, start_time=day_ago))
    portal.call(lambda: nexus.seed_logs(job_id, 1_600, per_ms=5))
    portal.call(nexus.clear_requests)
    entries = run_json(capsys, "jobs", "logs", job_id)
    assert len(entries) == 2_300
    assert len({e["id"] for e in entries}) == 2_300
    keys = [(e["createTime"], e["id"]) for e in entries]
    assert keys == sorted(keys)
    pages = [r for r in portal.call(lambda: nexus.requests) if r.path.endswith("/logs")]
    # Three pages backwards to find the windows, then the two newer windows forwards.
    assert len(pages) == 5, len(pages)


def test_logs_a_full_page_in_one_millisecond_is_an_error(
    env: object, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    portal, nexus = server
    job_id = make_job(server, capsys, start_at_time=NEVER)["id"]
    portal.call(lambda: nexus.seed_logs(job_id, 1_200, per_ms=1_200))
    code, out, err = run(capsys, "jobs", "logs", job_id)
    assert code == 1
    assert out == ""
    assert "share the millisecond" in err
    assert "--min-level" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("width", [40, 200])
def test_terminal_tables_draw_only_when_they_fit(width: int) -> None:
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=width, highlight=False)
    row = ["batchjob_4db5abd3-8eaf-460a-8d0d-e8cdeb3bc918", "a-long-job-name", "600"]
    table(terminal, "1 job(s)", ("id", "name", "delivered"), [row], right=("delivered",))
    text = out.getvalue()
    assert all(cell in text for cell in row), "every cell whole, drawn or not"
    assert ("┃" in text) == (width == 200), "drawn only where it fits"
