"""``state_file``: the state survives a restart; a bad file is refused at start."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from nexus_async import AsyncClient
from nexus_async.server import LocalNexus
from nexus_async.server._persist import RESTART_REASON, StateFileError

from .conftest import api_client
from .helpers import TINY_PNG, Receiver, all_logs, create_job, wait_terminal
from .helpers import now_ms as wall_ms

HOUR_MS = 3_600_000


async def snapshot(nexus: LocalNexus) -> dict[str, Any]:
    """Everything the API shows of the first project (upload URLs without the port,
    which a restarted server picks afresh)."""
    async with api_client(nexus) as client:
        jobs = (await client.get("jobs")).json()["data"]
        datasets = (await client.get("datasets")).json()["data"]
        return {
            "jobs": jobs,
            "datasets": json.loads(json.dumps(datasets).replace(nexus.base_url, "BASE")),
            "webhooks": (await client.get("webhooks")).json()["data"],
            "logs": {job["id"]: await all_logs(client, job["id"]) for job in jobs},
        }


async def test_the_state_survives_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "state.db"
    async with LocalNexus(state_file=path) as first:
        project_id, key = first.project_id, first.secret_key
        other_project, _ = first.add_project()
        webhook_id = first.seed_webhook(receiver.url("/ok"))
        async with api_client(first) as client:
            done = await create_job(
                client, first.seed_dataset([TINY_PNG] * 3), [webhook_id], first.deployment_id
            )
            await wait_terminal(client, done["id"])
            later = await create_job(
                client,
                first.seed_dataset([TINY_PNG]),
                [webhook_id],
                first.deployment_id,
                startAtTime=wall_ms() + HOUR_MS,
            )
        before = await snapshot(first)
    async with LocalNexus(state_file=path) as second:
        assert (second.project_id, second.secret_key) == (project_id, key)
        assert other_project in second.store.projects
        after = await snapshot(second)
        async with api_client(second) as client:  # new ids never repeat restored ones
            again = await create_job(
                client, after["datasets"][0]["id"], [webhook_id], second.deployment_id
            )
            await wait_terminal(client, again["id"])
            new_ids = {e["id"] for e in await all_logs(client, again["id"])}
    assert after["datasets"] == before["datasets"]
    assert after["webhooks"] == before["webhooks"]
    finished = {job["id"]: job for job in after["jobs"]}
    assert finished[done["id"]] == next(j for j in before["jobs"] if j["id"] == done["id"])
    assert after["logs"][done["id"]] == before["logs"][done["id"]]
    # The job that had not started when the server stopped ended, saying why.
    interrupted = finished[later["id"]]
    assert interrupted["status"]["overview"] == "Failed"
    assert interrupted["status"]["message"] == "Server restarted"
    last = after["logs"][later["id"]][0]
    assert (last["kind"], last["reason"]) == ("JobFinished", RESTART_REASON)
    assert after["logs"][later["id"]][1:] == before["logs"][later["id"]]
    old_ids = {e["id"] for entries in after["logs"].values() for e in entries}
    assert not new_ids & old_ids


async def test_a_deleted_job_stays_deleted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async with LocalNexus(state_file=path) as first:
        webhook_id = first.seed_webhook("http://127.0.0.1:9/unused")
        async with api_client(first) as client:
            job = await create_job(
                client,
                first.seed_dataset([TINY_PNG]),
                [webhook_id],
                first.deployment_id,
                startAtTime=wall_ms() + HOUR_MS,
            )
            assert (await client.delete(f"jobs/{job['id']}")).status_code == 200
    async with LocalNexus(state_file=path) as second, api_client(second) as client:
        assert (await client.get(f"jobs/{job['id']}")).status_code == 404


@pytest.mark.parametrize("content", [b"", None])
async def test_a_missing_or_empty_file_starts_fresh(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "state.db"
    if content is not None:
        path.write_bytes(content)
    async with LocalNexus(state_file=path) as nexus:
        assert (await snapshot(nexus))["jobs"] == []
    assert path.stat().st_mode & 0o077 == 0  # keys and secrets: the owner's only


def test_a_corrupt_or_foreign_file_is_refused_at_start(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database at all" * 100)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('format', 'something else')")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE songs (title TEXT)")

    async def start(path: Path) -> None:
        async with LocalNexus(state_file=path):
            pass

    for path in (corrupt, foreign, other):
        with pytest.raises(StateFileError, match="is not a state file"):
            anyio.run(start, path)
    assert corrupt.read_bytes() == b"this is not a database at all" * 100  # left alone


# ---------------------------------------------------------------------------- serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
        process = subprocess.Popen(
            [sys.executable, "-m", "nexus_async.cli", "serve", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        assert process.stdout is not None
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "NEXUS_DEPLOYMENT_ID" not in exports:
            line = process.stdout.readline()
            if not line:
                break
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                exports[name] = value
        return process, exports

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=15)


def saved_job(path: Path, job_id: str, overview: str) -> bool:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchall()
    return bool(rows) and f'"overview": "{overview}"' in rows[0][0]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_serve_keeps_its_state_across_a_restart(
    serve: Any, tmp_path: Path, stop: signal.Signals
) -> None:
    path = tmp_path / "s.db"
    process, env = serve("--state-file", str(path))
    base, key, project = (
        env["DATATURE_API_BASE_URL"],
        env["DATATURE_SECRET_KEY"],
        env["DATATURE_PROJECT_ID"],
    )

    async def make() -> tuple[str, str]:
        async with AsyncClient(key, base_url=base) as client:
            batch = client.get_project(project).batch
            dataset = await batch.datasets.create_from_items("mine", [TINY_PNG] * 4)
            dataset = await batch.datasets.wait_until_done(dataset.id, timeout=30)
            webhook = await batch.webhooks.create("mine", {"endpoint": "http://127.0.0.1:9/x"})
            options = {
                "dataset_id": dataset.id,
                "webhook_id": env["NEXUS_WEBHOOK_ID"],
                "deployment_id": env["NEXUS_DEPLOYMENT_ID"],
            }
            job = await batch.jobs.create("done", options)
            await batch.jobs.wait_until_done(job.id, timeout=30)
            return job.id, webhook.id

    job_id, webhook_id = anyio.run(make)
    headers = {"Secret-Key": key}
    url = f"{base}/projects/{project}/batch"
    before = httpx.get(f"{url}/jobs/{job_id}", headers=headers).json()
    before_logs = httpx.get(f"{url}/jobs/{job_id}/logs", headers=headers).json()
    if stop == signal.SIGKILL:  # nothing is written at exit: wait for a periodic write
        deadline = time.monotonic() + 10
        while not saved_job(path, job_id, "Reached") and time.monotonic() < deadline:
            time.sleep(0.05)
    process.send_signal(stop)
    out, err = process.communicate(timeout=15)
    assert "Traceback" not in err
    if stop == signal.SIGTERM:
        assert process.returncode == 0
        assert "stopped; the receiver verified 4 deliveries" in out

    _, env = serve("--state-file", str(path))
    assert (env["DATATURE_PROJECT_ID"], env["DATATURE_SECRET_KEY"]) == (project, key)
    base = env["DATATURE_API_BASE_URL"]
    url = f"{base}/projects/{project}/batch"
    after = httpx.get(f"{url}/jobs/{job_id}", headers=headers).json()
    assert after == before
    assert httpx.get(f"{url}/jobs/{job_id}/logs", headers=headers).json() == before_logs
    assert after["status"]["items"]["Delivered"] == 4
    webhooks = httpx.get(f"{url}/webhooks", headers=headers).json()["data"]
    assert webhook_id in {w["id"] for w in webhooks}


def test_serve_refuses_a_corrupt_state_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"garbage" * 50)
    result = subprocess.run(
        [sys.executable, "-m", "nexus_async.cli", "serve", "--state-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "error: --state-file:" in result.stderr
    assert "is not a state file" in result.stderr
    assert "Traceback" not in result.stderr
