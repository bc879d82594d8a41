"""Running the command in-process or as a subprocess, and making jobs for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal

from nexus_async.cli import main
from nexus_async.server import LocalNexus

from ..sdk.live import DEAD_ENDPOINT, png_data_url

__all__ = [
    "DEAD_ENDPOINT",
    "NEVER",
    "Server",
    "command",
    "make_job",
    "png_data_url",
    "run",
    "run_json",
]

Server = tuple[BlockingPortal, LocalNexus]

# A start time no test reaches: the job stays Waiting until cancelled.
NEVER = str(10**13 - 1)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in-process; its status, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run with `--json`, expect status 0; one object, or a list for several lines."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 else lines


def command(
    nexus: LocalNexus, *argv: str, columns: int = 80, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m nexus_async.cli` as a subprocess against `nexus`, output piped."""
    env = {
        **os.environ,
        "DATATURE_SECRET_KEY": nexus.secret_key,
        "DATATURE_API_BASE_URL": nexus.base_url,
        "DATATURE_PROJECT_ID": nexus.project_id,
        "COLUMNS": str(columns),
    }
    return subprocess.run(
        [sys.executable, "-m", "nexus_async.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def make_job(server: Server, capsys: pytest.CaptureFixture[str], **extra: str) -> dict[str, Any]:
    """Create a job of three tiny items (deliveries fail at once) through the command."""
    portal, nexus = server
    dataset = portal.call(lambda: nexus.seed_dataset([png_data_url()] * 3))
    webhook = portal.call(lambda: nexus.seed_webhook(DEAD_ENDPOINT, max_retries=0))
    args = ["jobs", "create", "cli-job", "--dataset-id", dataset, "--webhook-id", webhook]
    args += ["--deployment-id", nexus.deployment_id]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    job: dict[str, Any] = run_json(capsys, *args)
    return job
