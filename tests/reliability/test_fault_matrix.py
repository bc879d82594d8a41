"""Every SDK call under every fault: success after retries, or the documented typed error.

One case per cell of `fault_matrix.EXPECTED`, each run twice (the fault hitting the
first matching request only, then every one) in fresh projects of a shared local
server. Besides the outcome, each case checks that the call ended within a bounded
time, that nothing but a `NexusError` escaped, that the fault really happened, that
the client's pool is idle afterwards, and that a create made at most one resource
(it is sent again only after a lookup found that the failed attempt made none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from nexus_async import Backoff, RetryPolicy, errors
from nexus_async.server import LocalNexus

from ..sdk.live import assert_pool_idle
from .fault_matrix import CASES, EXPECTED, MATRIX_FILE, OUTCOMES, SERVER_FAULTS, render
from .support import (
    CALLS,
    Call,
    Ctx,
    DeadPort,
    FaultProxy,
    batch_of,
    created,
    http_client,
    new_ctx,
    sdk_client,
    server_requests,
)

CALL_LIMIT = 15.0
# Generous enough that a retried request finishes in time on a loaded CI machine.
READ_TIMEOUT = 0.5
CODES = {cls: code for code, cls in OUTCOMES.items() if cls is not None}


def _policy(fault: str) -> RetryPolicy:
    # Under a read timeout every attempt costs READ_TIMEOUT: stop after two.
    total = READ_TIMEOUT * 1.8 if fault == "timeout" else 10.0
    return RetryPolicy(attempts=3, total_time=total, backoff=Backoff(initial=0.01, maximum=0.05))


@pytest.fixture(scope="module")
def dead_port() -> Iterator[int]:
    port = DeadPort()
    yield port.port
    port.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix")


@pytest.fixture(scope="module")
async def upstream(anyio_backend: str) -> AsyncIterator[httpx.AsyncClient]:
    """The proxy's own client to the server."""
    async with http_client() as client:
        yield client


def _inject(nexus: LocalNexus, call: Call, ctx: Ctx, fault: str, times: int | None) -> None:
    # A fault on a request that changes something strikes after the server did it:
    # the worst case for a client deciding whether to repeat it.
    took_effect = call.method != "GET"
    kwargs: dict[str, Any]
    if fault == "dropped":
        kwargs = {"drop": True, "after_handling": took_effect}
    elif fault == "timeout":
        kwargs = {"status": None, "latency": 1.5}
    elif fault in ("500", "502", "503", "504"):
        kwargs = {"status": int(fault), "after_handling": took_effect}
    elif fault == "429+RA":
        kwargs = {"status": 429, "retry_after": 0.05}
    else:
        assert fault == "429"
        kwargs = {"status": 429}
    nexus.inject_fault(method=call.method, path=call.path(ctx), times=times, **kwargs)


async def _run(
    nexus: LocalNexus,
    upstream: httpx.AsyncClient,
    dead_port: int,
    workdir: Path,
    call: Call,
    fault: str,
    times: int | None,
) -> str:
    """Run `call` under `fault` in a fresh project; return the outcome's code."""
    ctx = new_ctx(nexus, workdir)
    await call.setup(ctx)
    nexus.clear_requests()
    proxy: FaultProxy | None = None
    transport: httpx.AsyncBaseTransport | None = None
    if fault in SERVER_FAULTS:
        _inject(nexus, call, ctx, fault, times)
    else:
        proxy = FaultProxy(upstream, dead_port)
        proxy.arm(fault, call.method, call.path(ctx), times)
        transport = proxy.transport()
    timeout = READ_TIMEOUT if fault == "timeout" else 10.0
    try:
        with anyio.fail_after(CALL_LIMIT):
            async with sdk_client(
                nexus.base_url,
                ctx.secret_key,
                transport=transport,
                timeout=timeout,
                retry=_policy(fault),
            ) as client:
                try:
                    await call.invoke(batch_of(client, ctx), ctx)
                finally:
                    if transport is None:
                        assert_pool_idle(client)
        observed = "ok"
    except errors.NexusError as exc:
        observed = CODES.get(type(exc), f"{type(exc).__name__}: {exc}")
    finally:
        nexus.clear_faults()
        if proxy is not None:
            proxy.disarm()

    # The fault really happened.
    if proxy is None:
        assert any(r.faulted for r in nexus.requests), "the injected fault never struck"
    else:
        assert proxy.hits >= 1, "the proxy fault never struck"
        if fault not in ("refused", "cut"):
            assert proxy.rewritten >= 1, "the body fault changed nothing"

    if call.name == "datasets.upload":
        # One create; a failed upload deletes the dataset again.
        assert server_requests(ctx, "POST", r"/batch/datasets$") == 1
        assert created(ctx, "datasets") == (1 if observed == "ok" else 0)
    elif call.creates is not None:
        made = created(ctx, call.creates)
        assert made <= 1, f"one call made {made} resources"
        if observed == "ok":
            assert made == 1
    return observed


@pytest.mark.parametrize(("call_name", "fault"), CASES, ids=[f"{c}~{f}" for c, f in CASES])
async def test_fault_matrix(
    nexus: LocalNexus,
    upstream: httpx.AsyncClient,
    dead_port: int,
    workdir: Path,
    call_name: str,
    fault: str,
) -> None:
    call = CALLS[call_name]
    once = await _run(nexus, upstream, dead_port, workdir, call, fault, 1)
    always = await _run(nexus, upstream, dead_port, workdir, call, fault, None)
    assert (once, always) == EXPECTED[call_name, fault]


def test_the_matrix_file_is_current() -> None:
    assert MATRIX_FILE.read_text(encoding="utf-8") == render(), (
        "FAULT_MATRIX.md is stale: run `python -m tests.reliability.fault_matrix`"
    )
