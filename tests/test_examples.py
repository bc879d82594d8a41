"""Every example runs as is (`python examples/X.py`) against a local server it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATURE_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart(tmp_path: Path) -> None:
    out = run_example("quickstart.py", cwd=tmp_path)
    assert "ended Reached" in out
    assert "20 delivered" in out


def test_orchestrate_many(tmp_path: Path) -> None:
    out = run_example("orchestrate_many.py", cwd=tmp_path)
    lines = [line for line in out.splitlines() if line.startswith("fan-out-")]
    assert len(lines) == 25
    assert len({line.split()[0] for line in lines}) == 25
    assert all("Reached: 4 delivered" in line for line in lines)


def test_stream_logs(tmp_path: Path) -> None:
    target = tmp_path / "log.ndjson"
    out = run_example("stream_logs.py", str(target), cwd=tmp_path)
    entries = [json.loads(line) for line in target.read_text().splitlines()]
    assert f"wrote {len(entries)} log entries" in out
    assert len({e["id"] for e in entries}) == len(entries)
    assert entries[-1]["kind"] == "JobFinished"
    times = [e["createTime"] for e in entries]
    assert times == sorted(times)


@pytest.mark.parametrize("name", ["quickstart.py", "orchestrate_many.py", "stream_logs.py"])
def test_examples_do_not_leave_files(name: str, tmp_path: Path) -> None:
    if name == "stream_logs.py":
        run_example(name, str(tmp_path / "out.ndjson"), cwd=tmp_path)
        assert [p.name for p in tmp_path.iterdir()] == ["out.ndjson"]
    else:
        run_example(name, cwd=tmp_path)
        assert list(tmp_path.iterdir()) == []


def test_service_starts_jobs_and_receives_results(tmp_path: Path) -> None:
    out = run_example("service_starlette.py", cwd=tmp_path)
    assert "Reached: 10 results received" in out
