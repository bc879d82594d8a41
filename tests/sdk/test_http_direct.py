"""API calls sent straight to the SDK's transport behave as if sent through the httpx client.

The SDK's own client sends API calls past httpx's client layers and reads answers
from httpcore's stream (`HTTPCore._exchange_direct`). These tests pin what must not
change: the headers and request target sent, gzip answers, the response handed out
by `with_raw_response`, and httpx's log line.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from nexus_async import AsyncClient, NexusError, RetryPolicy
from nexus_async._http import HTTPCore
from nexus_async.server import LocalNexus

from ..support.http import answer_each_request
from .wire import job, page

ONE_ATTEMPT = RetryPolicy(attempts=1, total_time=10.0)


def _core(base_url: str = "http://api.test:8080/v2") -> HTTPCore:
    client = AsyncClient("key-123", base_url=base_url)
    http: HTTPCore = client._http
    return http


def test_the_headers_sent_are_those_the_client_would_build() -> None:
    http = _core()
    request = http.client.build_request("GET", http.base_url + "/projects/p", headers=http._headers)
    assert sorted(http._wire_headers) == sorted(request.headers.raw)
    body_headers = {**http._headers, "Content-Type": "application/json"}
    request = http.client.build_request(
        "POST", http.base_url + "/x", headers=body_headers, content=b'{"a":1}'
    )
    assert sorted([*http._wire(body_headers), (b"Content-Length", b"7")]) == sorted(
        request.headers.raw
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/projects/proj_1/batch/jobs/batchjob_a-b.c", None),
        ("/projects/proj_1/batch/webhooks/webhook_1:test", None),
        ("/projects/proj_1/batch/jobs", {"limit": "100", "page": "abc=="}),
        ("/projects/proj_1/batch/jobs/batchjob_1/logs", {"minLevel": "Info", "x": "a b&c/é%41"}),
        ("/projects/a b/é", None),  # never an API path, but still encoded as httpx would
    ],
)
def test_the_request_target_is_encoded_as_httpx_encodes_it(
    path: str, params: dict[str, str] | None
) -> None:
    http = _core()
    url = http.base_url + path
    assert http._target(url, params) == httpx.URL(url, params=params).raw_path


def test_a_base_url_without_a_path_sends_the_path_alone() -> None:
    http = _core("http://api.test")
    url = http.base_url + "/projects/proj_1"
    assert http._target(url, None) == b"/projects/proj_1"


# ---------------------------------------------------------------- a server of our own


class _Server:
    """A loopback HTTP/1.1 server answering every request with one prepared answer.

    It keeps the head of every request it read, and serves keep-alive connections.
    """

    def __init__(self, body: bytes, headers: bytes) -> None:
        self.answer = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%s"
            b"content-length: %d\r\n\r\n%s" % (headers, len(body), body)
        )
        self.heads: list[bytes] = []

    async def serve(self, stream: SocketStream) -> None:
        await answer_each_request(stream, self._answer)  # no request here has a body

    def _answer(self, head: bytes) -> bytes:
        self.heads.append(head)
        return self.answer


@pytest.fixture
async def serving() -> AsyncIterator[Callable[[bytes, bytes], Awaitable[tuple[str, _Server]]]]:
    """Start servers of prepared answers: `await serving(body, headers)` -> (base URL, server)."""
    async with anyio.create_task_group() as tg:

        async def start(body: bytes, headers: bytes = b"") -> tuple[str, _Server]:
            server = _Server(body, headers)
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            tg.start_soon(listener.serve, server.serve)
            return f"http://127.0.0.1:{port}", server

        yield start
        tg.cancel_scope.cancel()


async def test_a_gzip_answer_is_decoded_and_handed_out_decoded(
    serving: Callable[[bytes, bytes], Awaitable[tuple[str, _Server]]],
) -> None:
    body = gzip.compress(json.dumps(page(job())).encode())
    base_url, _ = await serving(body, b"content-encoding: gzip\r\nx-request-id: req_gz\r\n")
    async with AsyncClient("key", base_url=base_url, retry=ONE_ATTEMPT) as client:
        jobs = client.get_project("proj_1").batch.jobs
        listed = await jobs.list()
        assert [j.id for j in listed.data] == [job()["id"]]
        _, response = await jobs.with_raw_response.list()
    assert response.headers["content-encoding"] == "gzip"
    assert json.loads(response.content) == page(job())
    assert response.headers["x-request-id"] == "req_gz"
    assert response.is_closed


async def test_a_post_without_a_body_is_framed_as_httpx_frames_it(
    serving: Callable[[bytes, bytes], Awaitable[tuple[str, _Server]]],
) -> None:
    base_url, server = await serving(b'{"ok": true}', b"")
    async with AsyncClient("key", base_url=base_url, retry=ONE_ATTEMPT) as client:
        hooks = client.get_project("proj_1").batch.webhooks
        with contextlib.suppress(NexusError):  # only what was sent matters here
            await hooks.test("webhook_1")
    (head,) = server.heads
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"post /projects/proj_1/batch/webhooks/webhook_1:test ")
    assert b"content-length: 0" in lines
    assert b"secret-key: key" in lines


async def test_a_raw_response_is_complete_and_its_key_blanked(jobs: Any, nexus: LocalNexus) -> None:
    _, response = await jobs.with_raw_response.list()
    assert response.status_code == 200
    assert json.loads(response.content)["data"] == []
    assert response.http_version == "HTTP/1.1"
    assert response.elapsed.total_seconds() > 0
    request = response.request
    assert request.method == "GET"
    assert str(request.url) == f"{nexus.base_url}/projects/{nexus.project_id}/batch/jobs"
    assert request.headers["Secret-Key"] == "[redacted]"
    assert request.headers["Host"] == httpx.URL(nexus.base_url).netloc.decode()
    assert request.headers["User-Agent"].startswith("nexus-async/")


async def test_httpx_still_logs_its_line_per_request(
    jobs: Any, nexus: LocalNexus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    await jobs.list()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    url = f"{nexus.base_url}/projects/{nexus.project_id}/batch/jobs"
    assert len(lines) == 1
    assert lines[0].startswith(f'HTTP Request: GET {url} "HTTP/1.1 200')  # reason: the server's
