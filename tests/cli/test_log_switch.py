"""`NEXUS_LOG=info|debug`: the SDK's log on stderr, switched on by the environment alone."""

from __future__ import annotations

import re

import pytest

from .helpers import Server, command


def test_debug_switch_writes_request_logs_without_the_key(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, nexus = server
    monkeypatch.setenv("NEXUS_LOG", "debug")
    done = command(nexus, "jobs", "list")
    assert done.returncode == 0, done.stderr
    requests = [line for line in done.stderr.splitlines() if " nexus_async: GET " in line]
    assert requests, done.stderr
    assert re.search(r"DEBUG nexus_async: GET http://\S+/batch/jobs\S* -> 200 in ", requests[0])
    assert nexus.secret_key not in done.stderr
    assert nexus.secret_key[:12] not in done.stderr
    assert nexus.secret_key not in done.stdout


@pytest.mark.parametrize("value", ["", "info", "verbose"])
def test_below_debug_no_request_is_logged(
    server: Server, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    _, nexus = server
    monkeypatch.setenv("NEXUS_LOG", value)
    done = command(nexus, "jobs", "list")
    assert done.returncode == 0, done.stderr
    assert " nexus_async: GET " not in done.stderr


def test_info_switch_shows_retries(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _, nexus = server
    monkeypatch.setenv("NEXUS_LOG", "info")
    nexus.inject_fault(method="GET", path="/batch/jobs$", status=503, times=1)
    try:
        done = command(nexus, "jobs", "list")
    finally:
        nexus.clear_faults()
    assert done.returncode == 0, done.stderr
    assert re.search(r"INFO nexus_async: retrying GET \S+ in [\d.]+ s \(attempt 2 of", done.stderr)
