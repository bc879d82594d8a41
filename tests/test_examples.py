"""Every example runs as the README says (`.venv/bin/python examples/X.py`): offline, and
against `nexus-async serve` with exactly the environment that `serve` prints."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from .sdk.wire_batch import DELIVERY, signed

EXAMPLES = Path(__file__).parent.parent / "examples"
CLI = [sys.executable, "-m", "nexus_async.cli"]
MODES = ["offline", "served"]


def clean_env() -> dict[str, str]:
    """The environment without any project configuration: the examples run offline."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATATURE_", "NEXUS_"))} | {
        "PYTHONUNBUFFERED": "1"
    }


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, str]]:
    """`nexus-async serve` in a subprocess; the variables it prints as `export` lines."""
    process = subprocess.Popen(
        [*CLI, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for _ in range(40):  # the banner is about a dozen lines
            line = process.stdout.readline()
            if not line or line.startswith("Ctrl-C"):
                break
            if match := re.fullmatch(r"\s*export (\w+)=(\S+)\s*", line):
                exports[match[1]] = match[2]
        yield exports
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=MODES)
def mode_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "offline":
        return clean_env()
    served: dict[str, str] = request.getfixturevalue("served")
    return clean_env() | served


def run_example(name: str, *args: str, cwd: Path, env: dict[str, str]) -> str:
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


def test_serve_prints_everything_an_example_needs(served: dict[str, str]) -> None:
    assert served.keys() == {
        "DATATURE_API_BASE_URL",
        "DATATURE_PROJECT_ID",
        "DATATURE_SECRET_KEY",
        "NEXUS_DATASET_ID",
        "NEXUS_WEBHOOK_ID",
        "NEXUS_DEPLOYMENT_ID",
    }
    headers = {"Secret-Key": served["DATATURE_SECRET_KEY"]}
    base = f"{served['DATATURE_API_BASE_URL']}/projects/{served['DATATURE_PROJECT_ID']}/batch"
    dataset = httpx.get(f"{base}/datasets/{served['NEXUS_DATASET_ID']}", headers=headers)
    assert dataset.json()["status"]["overview"] == "Uploaded"
    webhook = httpx.post(f"{base}/webhooks/{served['NEXUS_WEBHOOK_ID']}:test", headers=headers)
    assert webhook.json()["status"] == "Succeeded", "its receiver answers"


def test_quickstart(mode_env: dict[str, str], tmp_path: Path) -> None:
    out = run_example("quickstart.py", cwd=tmp_path, env=mode_env)
    assert "ended Reached" in out
    assert "20 delivered" in out


def test_orchestrate_many(mode_env: dict[str, str], tmp_path: Path) -> None:
    out = run_example("orchestrate_many.py", cwd=tmp_path, env=mode_env)
    lines = [line for line in out.splitlines() if line.startswith("fan-out-")]
    assert len(lines) == 25
    assert len({line.split()[0] for line in lines}) == 25
    items = "20" if "DATATURE_SECRET_KEY" in mode_env else "4"
    assert all(f"Reached: {items} delivered" in line for line in lines)


def test_stream_logs(mode_env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "log.ndjson"
    out = run_example("stream_logs.py", str(target), cwd=tmp_path, env=mode_env)
    entries = [json.loads(line) for line in target.read_text().splitlines()]
    assert f"wrote {len(entries)} log entries" in out
    assert len({e["id"] for e in entries}) == len(entries)
    assert entries[-1]["kind"] == "JobFinished"
    times = [e["createTime"] for e in entries]
    assert times == sorted(times)


def test_service_starts_jobs_and_receives_results(mode_env: dict[str, str], tmp_path: Path) -> None:
    out = run_example("service_starlette.py", cwd=tmp_path, env=mode_env)
    items = "20" if "DATATURE_SECRET_KEY" in mode_env else "10"
    assert f"Reached: {items} results received" in out


@pytest.mark.parametrize(
    "name", ["quickstart.py", "orchestrate_many.py", "stream_logs.py", "cancel_on_ctrl_c.py"]
)
def test_examples_do_not_leave_files(name: str, tmp_path: Path) -> None:
    if name == "stream_logs.py":
        run_example(name, str(tmp_path / "out.ndjson"), cwd=tmp_path, env=clean_env())
        assert [p.name for p in tmp_path.iterdir()] == ["out.ndjson"]
    else:
        run_example(name, cwd=tmp_path, env=clean_env())
        assert list(tmp_path.iterdir()) == []


def test_cancel_on_ctrl_c_runs_to_the_end_untouched(tmp_path: Path) -> None:
    out = run_example("cancel_on_ctrl_c.py", cwd=tmp_path, env=clean_env())
    assert len([line for line in out.splitlines() if line.endswith(" Reached")]) == 4
    assert "cancelled" not in out


def test_ctrl_c_cancels_unfinished_jobs_and_exits_130(
    mode_env: dict[str, str], tmp_path: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "cancel_on_ctrl_c.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mode_env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        assert started.startswith("started 4 jobs: "), started
        job_ids = started.split(": ", 1)[1].split()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    match = re.search(r"cancelled (\d+) unfinished jobs", out)
    assert match, out
    # Jobs start a second apart, so at least the last three had not started.
    assert int(match[1]) >= 3
    if "DATATURE_SECRET_KEY" not in mode_env:
        return
    # Against `serve`, the project shows it: no job is left waiting or running.
    headers = {"Secret-Key": mode_env["DATATURE_SECRET_KEY"]}
    base = f"{mode_env['DATATURE_API_BASE_URL']}/projects/{mode_env['DATATURE_PROJECT_ID']}"
    jobs = [httpx.get(f"{base}/batch/jobs/{i}", headers=headers).json() for i in job_ids]
    assert {job["status"]["overview"] for job in jobs} <= {"Reached", "Failed"}
    cancelled = [job for job in jobs if job["status"]["cancelledAt"] is not None]
    assert len(cancelled) == int(match[1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.frozen
class Receiver:
    url: str
    secret: str
    results: Path


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    """`examples/receiver_starlette.py` run as is, which makes and prints a fresh secret."""
    results = tmp_path / "results.ndjson"
    env = clean_env() | {
        "NEXUS_RECEIVER_PORT": str(_free_port()),
        "NEXUS_RESULTS_FILE": str(results),
    }
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "receiver_starlette.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        secret = process.stderr.readline().rsplit(": ", 1)[1].strip()
        listening = process.stdout.readline()
        url = re.search(r"at (\S+) into", listening)
        assert url, listening
        yield Receiver(url[1], secret, results)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stored(results: Path, count: int) -> list[str]:
    """The results file's lines once it has `count` (the receiver's workers write them
    just after answering), within a bounded time."""
    deadline = time.monotonic() + 15
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = results.read_text().splitlines() if results.exists() else []
        if len(lines) >= count:
            break
        time.sleep(0.05)
    return lines


def test_receiver_stores_a_signed_delivery(receiver: Receiver) -> None:
    body, headers = signed(receiver.secret, DELIVERY)
    response = httpx.post(receiver.url, content=body, headers=headers)
    assert response.status_code == 200
    forged = httpx.post(
        receiver.url, content=body, headers={**headers, "webhook-signature": "v1,x"}
    )
    assert forged.status_code == 401
    [line] = stored(receiver.results, 1)
    assert json.loads(line)["deliveryId"] == DELIVERY["deliveryId"]


def test_receiver_gets_a_jobs_results_from_serve(
    receiver: Receiver, served: dict[str, str], tmp_path: Path
) -> None:
    env = clean_env() | served
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(receiver.secret + "\n")

    def cli(*argv: str) -> str:
        result = subprocess.run(
            [*CLI, *argv, "--json"], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    webhook = json.loads(
        cli("webhooks", "create", "mine", receiver.url, "--secret-file", str(secret_file))
    )
    job = json.loads(
        cli(
            "jobs",
            "create",
            "to-my-receiver",
            "--dataset-id",
            served["NEXUS_DATASET_ID"],
            "--webhook-id",
            webhook["id"],
            "--deployment-id",
            served["NEXUS_DEPLOYMENT_ID"],
        )
    )
    final = json.loads(cli("jobs", "wait", job["id"], "--interval", "0.2", "--timeout", "60"))
    assert final["status"]["items"]["Delivered"] == 20
    lines = stored(receiver.results, 20)
    assert len(lines) == 20
    assert {json.loads(line)["jobId"] for line in lines} == {job["id"]}


def test_fastapi_receiver_imports_as_documented() -> None:
    pytest.importorskip("fastapi", reason="FastAPI is not a dependency; the example needs it")
    result = subprocess.run(
        [sys.executable, "-c", "import receiver_fastapi; print(receiver_fastapi.app.title)"],
        capture_output=True,
        text=True,
        cwd=EXAMPLES,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
