"""Every exit status of the command, and errors and warnings as one line in the user's terms."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

import nexus_async
from nexus_async import Jobs
from nexus_async.server import LocalNexus, serve_asgi

from .helpers import NEVER, Server, make_job, run, run_json

UNKNOWN_JOB = "batchjob_00000000-0000-0000-0000-000000000000"


def test_0_done(env: LocalNexus, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "jobs", "list")
    assert (code, err) == (0, "")


def test_1_api_error_is_one_line(env: LocalNexus, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "jobs", "get", UNKNOWN_JOB)
    assert code == 1
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1


def test_1_network_error(env: LocalNexus, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "jobs", "get", UNKNOWN_JOB, "--base-url", "http://127.0.0.1:9")
    assert code == 1
    assert "connection failed" in err
    assert len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def html_server(server: Server) -> Iterator[str]:
    """A server that is not the Nexus API: every path is an HTML 404 page."""

    async def page(request: object) -> HTMLResponse:
        return HTMLResponse("<html>\n<body>\n<h1>Not Found</h1>\n</body>\n</html>\n", 404)

    app = Starlette(routes=[Route("/{path:path}", page, methods=["GET"])])
    portal, _ = server
    with portal.wrap_async_context_manager(serve_asgi(app)) as url:
        yield url


def test_1_html_answer_is_named_not_printed(
    env: LocalNexus, html_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "jobs", "get", UNKNOWN_JOB, "--base-url", html_server)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "<" not in err
    assert "text/html" in err
    assert "--base-url" in err


def test_2_usage_names_flags(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "jobs", "list", "--limit", "0")
    assert code == 2
    assert "--limit" in err

    portal, nexus = server
    dataset = portal.call(lambda: nexus.seed_dataset(["http://127.0.0.1:9/a.png"]))
    argv = ["jobs", "create", "n", "--dataset-id", dataset, "--webhook-id", "webhook_x"]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "--deployment-id" in err
    assert "--artifact-id" in err
    assert "`deployment_id`" not in err
    assert len(err.strip().splitlines()) == 1


def test_2_missing_key_names_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATATURE_PROJECT_ID", "proj_1")
    monkeypatch.delenv("DATATURE_SECRET_KEY", raising=False)
    code, _, err = run(capsys, "jobs", "list")
    assert code == 2
    assert "--secret-key" in err
    assert "DATATURE_SECRET_KEY" in err


def test_3_job_ended_failed(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_job(server, capsys, start_at_time=NEVER)
    assert run(capsys, "jobs", "cancel", job["id"])[0] == 0
    code, out, _ = run(capsys, "jobs", "wait", job["id"], "--interval", "0.2")
    assert code == 3
    assert "Failed" in out


def test_4_timed_out_says_where_the_job_is(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_job(server, capsys, start_at_time=NEVER)
    code, _, err = run(capsys, "jobs", "wait", job["id"], "--interval", "0.1", "--timeout", "0.5")
    assert code == 4
    assert "timed out after 0.5 s" in err
    assert "still Waiting" in err


def test_5_cancel_of_a_finished_job(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_job(server, capsys)
    assert run(capsys, "jobs", "wait", job["id"], "--interval", "0.2")[0] == 0
    code, out, err = run(capsys, "jobs", "cancel", job["id"])
    assert code == 5
    assert "already finished (Reached" in err
    assert "cancel requested" not in out


def _subprocess_env(nexus: LocalNexus) -> dict[str, str]:
    return {
        **os.environ,
        "DATATURE_SECRET_KEY": nexus.secret_key,
        "DATATURE_API_BASE_URL": nexus.base_url,
        "DATATURE_PROJECT_ID": nexus.project_id,
        "PYTHONUNBUFFERED": "1",
    }


def test_130_interrupted(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    portal, nexus = server
    job = make_job(server, capsys, start_at_time=NEVER)
    portal.call(lambda: nexus.seed_logs(job["id"], 3))
    process = subprocess.Popen(
        [sys.executable, "-m", "nexus_async.cli", "jobs", "logs", job["id"], "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_subprocess_env(nexus),
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline(), "the backlog is printed before following"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 130
        assert err.strip() == "interrupted"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_141_broken_pipe_ends_quietly(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    portal, nexus = server
    job = make_job(server, capsys, start_at_time=NEVER)
    portal.call(lambda: nexus.seed_logs(job["id"], 2_500))  # far more than a pipe holds
    process = subprocess.Popen(
        [sys.executable, "-m", "nexus_async.cli", "jobs", "logs", job["id"], "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_subprocess_env(nexus),
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith(b"{")
        process.stdout.close()  # like `| head -1`
        err = process.stderr.read()
        assert process.wait(timeout=30) == 141
        assert err == b""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_min_level_in_any_case(
    env: LocalNexus, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_job(server, capsys)
    assert run(capsys, "jobs", "wait", job["id"], "--interval", "0.2")[0] == 0
    errors = run_json(capsys, "jobs", "logs", job["id"], "--min-level", "error")
    assert errors
    assert {e["level"] for e in errors} == {"Error"}
    code, _, err = run(capsys, "jobs", "logs", job["id"], "--min-level", "loud")
    assert code == 2
    assert "debug" in err.lower()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"nexus-async {nexus_async.__version__}"


def test_help_lists_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "jobs", "wait", "--help")
    assert code == 0
    for status in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130", "141"):
        assert f"\n  {status}" in out


def test_sdk_warnings_show_on_stderr_one_line_each(
    env: LocalNexus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    get = Jobs.get

    async def noisy_get(self: Jobs, job_id: str) -> Any:
        logging.getLogger("nexus_async._poll").info("routine detail")
        logging.getLogger("nexus_async._poll").warning("cannot reach\nthe API for 30 s")
        return await get(self, job_id)

    monkeypatch.setattr(Jobs, "get", noisy_get)
    code, _, err = run(capsys, "jobs", "get", UNKNOWN_JOB)
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0] == "warning: cannot reach the API for 30 s"
    assert lines[1].startswith("error: ")
    assert "routine detail" not in err
    assert not logging.getLogger("nexus_async").handlers, "removed when the command ends"


def test_with_nexus_log_each_warning_shows_once(
    env: LocalNexus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    get = Jobs.get

    async def noisy_get(self: Jobs, job_id: str) -> Any:
        logging.getLogger("nexus_async._poll").warning("cannot reach the API for 30 s")
        return await get(self, job_id)

    monkeypatch.setattr(Jobs, "get", noisy_get)
    monkeypatch.setenv("NEXUS_LOG", "info")
    monkeypatch.setattr(nexus_async._client, "_log_switch_read", False)  # read it again
    logger = logging.getLogger("nexus_async")
    before, level = list(logger.handlers), logger.level
    try:
        code, _, err = run(capsys, "jobs", "get", UNKNOWN_JOB)
        switched_on = [h for h in logger.handlers if h not in before]
    finally:
        for handler in logger.handlers[:]:
            if handler not in before:
                logger.removeHandler(handler)
        logger.setLevel(level)
    assert code == 1
    assert len(switched_on) == 1, "NEXUS_LOG's handler was installed"
    assert err.count("cannot reach the API for 30 s") == 1, err
    assert "WARNING nexus_async._poll: cannot reach the API for 30 s" in err
