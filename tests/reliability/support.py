"""Shared pieces of the reliability suites: clients, a misbehaving proxy, the SDK calls.

`CALLS` lists every SDK call the fault matrix and the cancellation suite exercise,
each with the setup it needs in a fresh project, the request that faults hit, and
how to invoke it. `FaultProxy` is an `httpx.MockTransport` handler that forwards
requests to the local server over real HTTP and misbehaves on the ones it is armed
for: connection refused (the request goes to a port nobody listens on), a body cut
off mid-stream, or a 2xx body rewritten (not JSON, truncated, another shape, extra
keys, unknown enum values).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx

from nexus_async import AsyncClient, Batch, RetryPolicy
from nexus_async.server import LocalNexus

from ..support import DEAD_ENDPOINT, FAST_RETRY, png_data_url, raw_client

FAR_FUTURE_MS = 10**13 - 1
LOG_ENTRIES = 25
LOG_PAGE = 10


def http_client(
    *, transport: httpx.AsyncBaseTransport | None = None, max_connections: int = 16
) -> httpx.AsyncClient:
    """An httpx client shaped like the SDK's own (same pool limits), cheap to build."""
    return raw_client(
        transport=transport,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


@asynccontextmanager
async def sdk_client(
    base_url: str,
    secret_key: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 10.0,
    retry: RetryPolicy = FAST_RETRY,
) -> AsyncIterator[AsyncClient]:
    """An entered `AsyncClient`: over its own transport, or over `transport` when given."""
    if transport is None:
        async with AsyncClient(
            secret_key, base_url=base_url, timeout=timeout, retry=retry
        ) as client:
            yield client
        return
    http = http_client(transport=transport)
    try:
        async with AsyncClient(
            secret_key, base_url=base_url, http_client=http, timeout=timeout, retry=retry
        ) as client:
            yield client
    finally:
        await http.aclose()


class DeadPort:
    """A loopback port that refuses connections: bound (nobody else takes it), not listening."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------------- body rewrites

NOT_JSON = b"<!doctype html><title>Service maintenance</title><p>back soon</p>"
WRONG_SHAPE: dict[str, Any] = {"id": 12345, "data": None, "result": "ok"}
UNKNOWN_ENUMS = {"overview": "Suspended", "level": "Trace", "kind": "FutureKind"}


def add_unknown_keys(value: Any) -> Any:
    """`value` with an unknown field added to every object (maps of headers excepted)."""
    if isinstance(value, dict):
        out = {k: (v if k == "headers" else add_unknown_keys(v)) for k, v in value.items()}
        out["zzFutureField"] = {"nested": [1, "two", None], "flag": True}
        return out
    if isinstance(value, list):
        return [add_unknown_keys(v) for v in value]
    return value


def unknown_enum_values(value: Any) -> Any:
    """`value` with every enum-like string (`overview`, `level`, `kind`, a string `status`)
    replaced by a value the SDK has never heard of."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, str) and key in UNKNOWN_ENUMS:
                out[key] = UNKNOWN_ENUMS[key]
            elif isinstance(item, str) and key == "status":
                out[key] = "Deferred"
            else:
                out[key] = unknown_enum_values(item)
        return out
    if isinstance(value, list):
        return [unknown_enum_values(v) for v in value]
    return value


def rewrite(fault: str, body: bytes) -> bytes:
    """The body a 2xx answer carries under a body fault."""
    if fault == "not-json":
        return NOT_JSON
    if fault == "truncated":
        return body[: max(1, len(body) // 2)]
    if fault == "wrong-shape":
        return json.dumps(WRONG_SHAPE).encode()
    data = json.loads(body)
    if fault == "unknown-keys":
        return json.dumps(add_unknown_keys(data)).encode()
    if fault == "unknown-enum":
        return json.dumps(unknown_enum_values(data)).encode()
    raise AssertionError(f"not a body fault: {fault}")


class _CutStream(httpx.AsyncByteStream):
    """Half a body, then the connection breaks (what httpcore reports for a short body)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        half = len(self._body) // 2
        yield self._body[:half]
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body "
            f"(received {half} bytes, expected {len(self._body)})"
        )


_HOP_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection"}


class FaultProxy:
    """A `MockTransport` handler: forwards to the server, misbehaving where armed.

    `arm(fault, method, path, times)` makes the next `times` requests (None: all)
    whose method is `method` and whose path matches the regex `path` suffer `fault`:
    "refused", "cut", or a body fault (see `rewrite`). Body faults apply to 2xx
    answers only; `rewritten` counts the bodies that really changed.
    """

    def __init__(self, upstream: httpx.AsyncClient, dead_port: int) -> None:
        self._upstream = upstream
        self._dead_port = dead_port
        self._fault: str | None = None
        self._method = ""
        self._path: re.Pattern[str] = re.compile("$^")
        self._times: int | None = 0
        self.hits = 0
        self.rewritten = 0

    def arm(self, fault: str, method: str, path: str, times: int | None) -> None:
        self._fault, self._method, self._path, self._times = fault, method, re.compile(path), times
        self.hits = self.rewritten = 0

    def disarm(self) -> None:
        self._fault = None

    def _take(self, request: httpx.Request) -> str | None:
        if self._fault is None or request.method != self._method:
            return None
        if not self._path.search(request.url.path):
            return None
        if self._times is not None:
            if self._times <= 0:
                return None
            self._times -= 1
        self.hits += 1
        return self._fault

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        fault = self._take(request)
        url = request.url
        if fault == "refused":
            url = url.copy_with(host="127.0.0.1", port=self._dead_port)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        forwarded = self._upstream.build_request(
            request.method, url, headers=headers, content=request.content
        )
        answer = await self._upstream.send(forwarded)  # raises ConnectError when refused
        body = answer.content
        out_headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS]
        if fault == "cut":
            out_headers.append(("content-length", str(len(body))))
            return httpx.Response(answer.status_code, headers=out_headers, stream=_CutStream(body))
        if fault is not None and answer.is_success:
            changed = rewrite(fault, body)
            self.rewritten += changed != body
            body = changed
        return httpx.Response(answer.status_code, headers=out_headers, content=body)


# --------------------------------------------------------------------------- calls


@attrs.define
class Ctx:
    """What a call's setup made in its project."""

    nexus: LocalNexus
    project_id: str
    secret_key: str
    workdir: Path
    job_id: str = ""
    job_ids: list[str] = attrs.field(factory=list)
    dataset_id: str = ""
    webhook_id: str = ""
    options: dict[str, object] = attrs.field(factory=dict)
    ndjson: Path | None = None


Setup = Callable[[Ctx], Awaitable[None]]
Invoke = Callable[[Batch, Ctx], Awaitable[object]]


@attrs.frozen
class Call:
    """One SDK call: its setup, the request faults hit, and how to invoke it.

    `creates` names the collection (`jobs`, `datasets`, `webhooks`) a create adds to,
    or `test` for the webhook test; the matrix checks that one call never makes two.
    """

    name: str
    method: str
    path: Callable[[Ctx], str]
    setup: Setup
    invoke: Invoke
    rule: str
    creates: str | None = None


def new_ctx(nexus: LocalNexus, workdir: Path) -> Ctx:
    project_id, secret_key = nexus.add_project()
    return Ctx(nexus=nexus, project_id=project_id, secret_key=secret_key, workdir=workdir)


def batch_of(client: AsyncClient, ctx: Ctx) -> Batch:
    return client.get_project(ctx.project_id).batch


async def _options(ctx: Ctx) -> None:
    nexus = ctx.nexus
    ctx.dataset_id = nexus.seed_dataset([png_data_url()], project_id=ctx.project_id)
    ctx.webhook_id = nexus.seed_webhook(
        DEAD_ENDPOINT, max_retries=0, max_backoff_ms=1, project_id=ctx.project_id
    )
    ctx.options = {
        "dataset_id": ctx.dataset_id,
        "webhook_id": ctx.webhook_id,
        "deployment_id": nexus.deployment_of(ctx.project_id),
    }


async def _create_job(ctx: Ctx, **times: int) -> None:
    await _options(ctx)
    async with sdk_client(ctx.nexus.base_url, ctx.secret_key) as client:
        job = await batch_of(client, ctx).jobs.create("setup", {**ctx.options, **times})
    ctx.job_id = job.id


async def _quiet_job(ctx: Ctx) -> None:
    """A job that starts in the far future: it neither changes nor logs on its own."""
    await _create_job(ctx, start_at_time=FAR_FUTURE_MS)


async def _quiet_job_with_logs(ctx: Ctx) -> None:
    await _quiet_job(ctx)
    ctx.nexus.seed_logs(ctx.job_id, LOG_ENTRIES, per_ms=2, start_time=1_000_000)


async def _running_job(ctx: Ctx) -> None:
    """A one-item job that finishes by itself within a moment."""
    await _create_job(ctx)


async def _ndjson(ctx: Ctx) -> None:
    path = ctx.workdir / f"{ctx.project_id}.ndjson"
    line = json.dumps({"kind": "Image", "url": png_data_url()})
    path.write_text(f"{line}\n{line}\n")
    ctx.ndjson = path


async def _dataset(ctx: Ctx) -> None:
    ctx.dataset_id = ctx.nexus.seed_dataset([png_data_url()], project_id=ctx.project_id)


async def _webhook(ctx: Ctx) -> None:
    ctx.webhook_id = ctx.nexus.seed_webhook(
        DEAD_ENDPOINT, max_retries=0, max_backoff_ms=1, project_id=ctx.project_id
    )


async def _nothing(ctx: Ctx) -> None:
    return None


WAIT_TIMEOUT = 1.2  # over twice the fault matrix read timeout, so one retried poll fits


async def _all_logs(batch: Batch, ctx: Ctx) -> object:
    entries = [e async for e in batch.jobs.get_all_logs(ctx.job_id, {"max_entries": LOG_PAGE})]
    assert len(entries) == LOG_ENTRIES
    assert len({e.id for e in entries}) == LOG_ENTRIES
    return entries


def _project(ctx: Ctx, rest: str) -> str:
    return f"^/projects/{ctx.project_id}/batch/{rest}$"


CALLS: dict[str, Call] = {
    call.name: call
    for call in [
        Call(
            "jobs.create",
            "POST",
            lambda c: _project(c, "jobs"),
            _options,
            lambda b, c: b.jobs.create("matrix", c.options),
            "create: retried only when it never reached the server",
            creates="jobs",
        ),
        Call(
            "jobs.list",
            "GET",
            lambda c: _project(c, "jobs"),
            _quiet_job,
            lambda b, c: b.jobs.list(),
            "read: retried",
        ),
        Call(
            "jobs.get",
            "GET",
            lambda c: _project(c, f"jobs/{c.job_id}"),
            _quiet_job,
            lambda b, c: b.jobs.get(c.job_id),
            "read: retried",
        ),
        Call(
            "jobs.cancel",
            "PATCH",
            lambda c: _project(c, f"jobs/{c.job_id}"),
            _quiet_job,
            lambda b, c: b.jobs.cancel(c.job_id),
            "idempotent PATCH (stop time = now): retried",
        ),
        Call(
            "jobs.delete",
            "DELETE",
            lambda c: _project(c, f"jobs/{c.job_id}"),
            _quiet_job,
            lambda b, c: b.jobs.delete(c.job_id),
            "idempotent: retried; a retry's 404 counts as deleted after an attempt that "
            "may have been carried out (no answer, 500, 502, 504), not after a 503 or 429",
        ),
        Call(
            "jobs.get_logs",
            "GET",
            lambda c: _project(c, f"jobs/{c.job_id}/logs"),
            _quiet_job_with_logs,
            lambda b, c: b.jobs.get_logs(c.job_id, {"max_entries": LOG_PAGE}),
            "read: retried",
        ),
        Call(
            "jobs.get_all_logs",
            "GET",
            lambda c: _project(c, f"jobs/{c.job_id}/logs"),
            _quiet_job_with_logs,
            _all_logs,
            "read (3 pages, prefetched): retried",
        ),
        Call(
            "jobs.wait_until_done",
            "GET",
            lambda c: _project(c, f"jobs/{c.job_id}"),
            _running_job,
            lambda b, c: b.jobs.wait_until_done(c.job_id, interval=0.05, timeout=WAIT_TIMEOUT),
            f"poll: transient errors ridden out until the timeout ({WAIT_TIMEOUT} s here), "
            "an unreachable API until the retry budget",
        ),
        Call(
            "datasets.create",
            "POST",
            lambda c: _project(c, "datasets"),
            _ndjson,
            lambda b, c: b.datasets.create("matrix", str(c.ndjson)),
            "create: retried only when it never reached the server",
            creates="datasets",
        ),
        Call(
            "datasets.upload",
            "PUT",
            lambda c: "^/_nexus/uploads/",
            _ndjson,
            lambda b, c: b.datasets.create("matrix", str(c.ndjson)),
            "the upload PUT of datasets.create: retried; on failure the dataset is deleted",
            creates="datasets",
        ),
        Call(
            "datasets.get",
            "GET",
            lambda c: _project(c, f"datasets/{c.dataset_id}"),
            _dataset,
            lambda b, c: b.datasets.get(c.dataset_id),
            "read: retried",
        ),
        Call(
            "datasets.list",
            "GET",
            lambda c: _project(c, "datasets"),
            _dataset,
            lambda b, c: b.datasets.list(),
            "read: retried",
        ),
        Call(
            "webhooks.create",
            "POST",
            lambda c: _project(c, "webhooks"),
            _nothing,
            lambda b, c: b.webhooks.create("matrix", {"endpoint": DEAD_ENDPOINT}),
            "create: retried only when it never reached the server",
            creates="webhooks",
        ),
        Call(
            "webhooks.get",
            "GET",
            lambda c: _project(c, f"webhooks/{c.webhook_id}"),
            _webhook,
            lambda b, c: b.webhooks.get(c.webhook_id),
            "read: retried",
        ),
        Call(
            "webhooks.list",
            "GET",
            lambda c: _project(c, "webhooks"),
            _webhook,
            lambda b, c: b.webhooks.list(),
            "read: retried",
        ),
        Call(
            "webhooks.test",
            "POST",
            lambda c: _project(c, f"webhooks/{c.webhook_id}:test"),
            _webhook,
            lambda b, c: b.webhooks.test(c.webhook_id),
            "sends a delivery: retried only when it never reached the server",
            creates="test",
        ),
    ]
}


def created(ctx: Ctx, what: str) -> int:
    """How many `what` the server holds in the call's project (or saw tested)."""
    project = ctx.nexus.store.projects[ctx.project_id]
    if what == "jobs":
        return len(project.jobs)
    if what == "datasets":
        return len(project.datasets)
    if what == "webhooks":
        return len(project.webhooks)
    return sum(
        1
        for r in ctx.nexus.requests
        if r.method == "POST" and r.path.endswith(":test") and ctx.project_id in r.path
    )


def server_requests(ctx: Ctx, method: str, path: str) -> int:
    """Requests the server received (whatever it answered) matching `method` and `path`."""
    pattern = re.compile(path)
    return sum(1 for r in ctx.nexus.requests if r.method == method and pattern.search(r.path))
