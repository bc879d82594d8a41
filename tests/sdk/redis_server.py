"""A real redis-server for the tests, started on a free loopback port and stopped after."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

INSTALL_HINT = "install it with `apt-get install -y redis-server` (as .ci/run does)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[str]:
    """`redis://127.0.0.1:<port>/0` of a redis-server of our own; skipped locally without one.

    In CI (`CI=true`) a missing redis-server fails instead: those tests must run there.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"redis-server is missing in CI: {INSTALL_HINT}")
        pytest.skip(f"redis-server is not installed: {INSTALL_HINT}")
    port = _free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10.0
        while not _answers(port):
            if process.poll() is not None:
                pytest.fail(f"redis-server exited: {process.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING within 10 s")
            time.sleep(0.05)  # a process starting up: nothing to wait on but its port
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
