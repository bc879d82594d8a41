"""The `nexus-async` commands, driven in-process against a local server in a thread."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nexus_async.server import LocalNexus

from .helpers import DEAD_ENDPOINT, NEVER, Server, make_job, png_data_url, run, run_json


def test_jobs_commands(
    env: LocalNexus,
    server: Server,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = make_job(server, capsys)
    assert job["id"].startswith("batchjob_")
    assert job["status"]["items"].keys() >= {"Gathered", "FailedDeliver"}

    code, out, _ = run(capsys, "jobs", "list")
    assert code == 0
    assert job["id"] in out

    listed = run_json(capsys, "jobs", "list")
    ids = [j["id"] for j in (listed if isinstance(listed, list) else [listed])]
    assert job["id"] in ids

    code, out, _ = run(capsys, "jobs", "wait", job["id"], "--interval", "0.2", "--timeout", "30")
    assert code == 0
    assert "Reached" in out
    final = run_json(capsys, "jobs", "get", job["id"])
    assert final["status"]["overview"] == "Reached"

    code, out, _ = run(capsys, "jobs", "logs", job["id"])
    assert code == 0
    assert "JobFinished" in out.splitlines()[-1]
    entries = run_json(capsys, "jobs", "logs", job["id"], "--follow")
    assert [e["kind"] for e in entries][-1] == "JobFinished"

    later = make_job(server, capsys, start_at_time=NEVER)
    cancelled = run_json(capsys, "jobs", "cancel", later["id"])
    assert cancelled["id"] == later["id"]
    code, out, _err = run(capsys, "jobs", "wait", later["id"], "--interval", "0.2")
    assert code == 3, "waiting on a job that ends Failed exits 3"
    assert "cancelled" in out

    deleted = run_json(capsys, "jobs", "delete", job["id"])
    assert deleted == {"id": job["id"], "deleted": True}


def test_datasets_commands(
    env: LocalNexus, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "items.ndjson"
    path.write_text(json.dumps({"kind": "Image", "url": png_data_url()}) + "\n")
    created = run_json(capsys, "datasets", "create", "cli-ds", str(path), "--wait")
    assert created["status"]["itemCount"] == 1
    assert created["status"]["overview"] in {"Uploaded", "Processed"}
    code, out, _ = run(capsys, "datasets", "list")
    assert code == 0
    assert created["id"] in out
    assert run_json(capsys, "datasets", "get", created["id"])["name"] == "cli-ds"
    assert run_json(capsys, "datasets", "delete", created["id"])["deleted"] is True

    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"kind": "Image", "url": "http://x/1.png"}\nnot json\n')
    code, _, err = run(capsys, "datasets", "create", "bad", str(bad))
    assert code == 2
    assert "line 2" in err
    assert len(err.strip().splitlines()) == 1


def test_webhooks_commands(
    env: LocalNexus, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret_file = tmp_path / "hook.secret"
    code, out, _ = run(
        capsys, "webhooks", "create", "cli-hook", DEAD_ENDPOINT, "--secret-file", str(secret_file)
    )
    assert code == 0
    secret = secret_file.read_text().strip()
    assert len(secret) >= 40
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert secret not in out
    webhook_id = out.split()[1]
    assert webhook_id.startswith("webhook_")

    listed = run_json(capsys, "webhooks", "list")
    rows = listed if isinstance(listed, list) else [listed]
    assert webhook_id in [w["id"] for w in rows]
    got = run_json(capsys, "webhooks", "get", webhook_id)
    assert got["endpoint"] == DEAD_ENDPOINT
    assert secret not in json.dumps(got)

    tested = run_json(capsys, "webhooks", "test", webhook_id)
    assert tested["status"] == "Failed"  # nobody listens at the endpoint
    assert tested["responseCode"] == 0
    code, out, _ = run(capsys, "webhooks", "test", webhook_id)
    assert code == 0
    assert "attempt" in out

    assert run_json(capsys, "webhooks", "delete", webhook_id)["deleted"] is True


def test_errors_are_one_line(env: LocalNexus, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "jobs", "get", "batchjob_00000000-0000-0000-0000-000000000000")
    assert code == 1
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err

    code, _, err = run(capsys, "jobs", "get", "batchjob_../../workspace")
    assert code == 2
    assert "job_id" in err

    code, _, err = run(capsys, "jobs", "list", "--secret-key", "not-the-key")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "not-the-key" not in err

    code, _, err = run(capsys, "jobs", "list", "--limit", "0")
    assert code == 2
    assert "limit" in err


def test_missing_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATATURE_PROJECT_ID", raising=False)
    monkeypatch.setenv("DATATURE_SECRET_KEY", "k")
    code, _, err = run(capsys, "jobs", "list")
    assert code == 2
    assert "DATATURE_PROJECT_ID" in err
    monkeypatch.setenv("DATATURE_PROJECT_ID", "proj_1")
    monkeypatch.delenv("DATATURE_SECRET_KEY")
    code, _, err = run(capsys, "jobs", "list")
    assert code == 2
    assert "DATATURE_SECRET_KEY" in err


def test_demo_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--items", "40", "--jobs", "2")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-1] == "every item accounted for: 40 items in 2 jobs"
    counters = [line for line in lines if line.startswith("job-")]
    assert len(counters) == 2
    for line in counters:
        match = re.search(r"delivered +(\d+) · failed +(\d+) · of (\d+)$", line)
        assert match, line
        delivered, failed, total = map(int, match.groups())
        assert delivered + failed == total
    assert max(len(line) for line in lines) <= 80, "nothing cut or wrapped at 80 columns"


def test_serve_command_prints_its_address_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "nexus_async.cli", "serve", "--secret-key", "cli-secret-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "DATATURE_SECRET_KEY" not in lines:
            line = process.stdout.readline()
            if not line:
                break
            if line.strip().startswith("export "):
                key, _, value = line.strip().removeprefix("export ").partition("=")
                lines[key] = value
        assert lines["DATATURE_SECRET_KEY"] == "cli-secret-key"
        response = httpx.get(
            f"{lines['DATATURE_API_BASE_URL']}/projects/{lines['DATATURE_PROJECT_ID']}/batch/jobs",
            headers={"Secret-Key": "cli-secret-key"},
        )
        assert response.status_code == 200
        assert response.json()["data"] == []
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
        assert process.returncode in (0, 130)
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
