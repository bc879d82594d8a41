"""Fault injection, added latency, the request log and the admin API."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import TINY_PNG, Receiver, create_dataset, create_job, create_webhook, wait_terminal


async def test_status_fault_with_retry_after_for_n_requests(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    fault = nexus.inject_fault(
        method="GET", path=r"/batch/jobs$", status=503, times=2, retry_after=1.5
    )
    assert fault.times == 2
    for _ in range(2):
        response = await client.get("jobs")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1.5"
        assert response.json() == {"message": "injected fault", "code": "unavailable"}
    assert (await client.get("jobs")).status_code == 200
    nexus.inject_fault(method="GET", path=r"/batch/jobs$", status=429, retry_after=2)
    limited = await client.get("jobs")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["code"] == "rate_limited"


async def test_matching_by_method_and_path_and_unlimited_faults(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    nexus.inject_fault(method="POST", path=r"/datasets$", status=500, times=None)
    assert (await client.get("datasets")).status_code == 200  # another method
    assert (await client.get("webhooks")).status_code == 200  # another path
    for _ in range(3):
        assert (await client.post("datasets", json={})).status_code == 500
    nexus.clear_faults()
    assert (await client.post("datasets", json={})).status_code == 400  # the real answer
    nexus.inject_fault(method="*", path="webhooks", status=502)
    assert (await client.delete("webhooks/webhook_x")).status_code == 502


async def test_latency_alone_or_before_a_status(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    nexus.inject_fault(method="GET", path=r"/jobs$", status=None, latency=0.3)
    started = anyio.current_time()
    slow = await client.get("jobs")
    assert slow.status_code == 200
    assert anyio.current_time() - started >= 0.3
    nexus.inject_fault(method="GET", path=r"/jobs$", status=504, latency=0.2)
    started = anyio.current_time()
    assert (await client.get("jobs")).status_code == 504
    assert anyio.current_time() - started >= 0.2


async def test_client_giving_up_on_a_slow_request(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    nexus.inject_fault(method="GET", path=r"/jobs$", status=None, latency=30)
    with pytest.raises(httpx.ReadTimeout):
        await client.get("jobs", timeout=0.2)
    [record] = nexus.requests
    for _ in range(150):  # the server notices the hang-up and ends the request early
        if record.ended is not None:
            break
        await anyio.sleep(0.02)
    assert record.ended is not None
    assert record.ended - record.time < 5
    assert record.faulted
    assert record.status is None
    assert (await client.get("jobs")).status_code == 200


async def test_drop_closes_the_connection_without_a_response(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    nexus.inject_fault(method="GET", path=r"/jobs$", drop=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get("jobs")
    record = nexus.requests[-1]
    assert (record.method, record.status, record.faulted) == ("GET", None, True)
    assert (await client.get("jobs")).status_code == 200


async def test_after_handling_the_request_took_effect(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset = await create_dataset(client, [TINY_PNG])
    webhook = await create_webhook(client, receiver.url("/ok"))
    nexus.inject_fault(method="POST", path=r"/jobs$", status=500, after_handling=True)
    body = {
        "name": "once",
        "spec": {
            "datasetId": dataset["id"],
            "deployment": {"kind": "ExistingDeployment", "deploymentId": nexus.deployment_id},
            "resultDelivery": {"destinations": [{"kind": "Webhook", "webhookId": webhook["id"]}]},
        },
    }
    failed = await client.post("jobs", json=body)
    assert failed.status_code == 500
    assert failed.json()["message"] == "injected fault"
    [job] = (await client.get("jobs")).json()["data"]
    assert job["name"] == "once"
    nexus.inject_fault(method="POST", path=r"/jobs$", drop=True, after_handling=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post("jobs", json=body)
    assert len((await client.get("jobs")).json()["data"]) == 2
    posts = [r for r in nexus.requests if r.method == "POST" and r.path.endswith("/jobs")]
    assert [(r.status, r.faulted) for r in posts] == [(500, True), (None, True)]


async def test_faults_on_static_files_fail_gathers(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    nexus.inject_fault(method="GET", path=r"^/static/img/square\.png$", status=503, times=2)
    dataset_id = nexus.seed_dataset([nexus.static_url("img/square.png")] * 3)
    webhook = await create_webhook(client, receiver.url("/ok"))
    job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    finished = await wait_terminal(client, job["id"])
    assert finished["status"]["items"]["FailedGather"] == 2
    assert finished["status"]["items"]["Delivered"] == 1


async def test_server_wide_latency(static_dir: Path) -> None:
    latency = 0.5
    async with (
        LocalNexus(latency=latency, static_dir=static_dir) as nexus,
        api_client(nexus) as client,
        httpx.AsyncClient(trust_env=False) as raw,
    ):
        order: list[str] = []

        async def api() -> None:
            started = anyio.current_time()
            assert (await client.get("jobs")).status_code == 200
            assert anyio.current_time() - started >= latency
            order.append("api")

        async def exempt() -> None:
            assert (await raw.get(nexus.static_url("img/square.png"))).status_code == 200
            assert (await raw.get(f"{nexus.base_url}/_nexus/health")).status_code == 200
            order.append("static and admin")

        # Static files and admin calls are not delayed: they finish while the API call waits.
        async with anyio.create_task_group() as tg:
            tg.start_soon(api)
            tg.start_soon(exempt)
        assert order == ["static and admin", "api"]
        nexus.latency = 0
        started = anyio.current_time()
        await client.get("jobs")
        assert anyio.current_time() - started < latency


async def test_request_log(
    nexus: LocalNexus, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    content_ok = await create_dataset(client, [TINY_PNG])
    await client.get("jobs", params={"limit": 5})
    await client.get("nope")
    await admin.get("requests")  # admin calls are not logged
    async with httpx.AsyncClient(trust_env=False) as raw:
        await raw.get(nexus.static_url("img/square.png"))  # nor static files
    records = nexus.requests
    assert [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in records] == [
        ("POST", "datasets", 200),
        ("PUT", records[1].path.rsplit("/", 1)[-1], 200),
        ("GET", content_ok["id"], 200),
        ("GET", "jobs", 200),
        ("GET", "nope", 404),
    ]
    assert records[1].path.startswith("/_nexus/uploads/")
    assert records[3].query == "limit=5"
    assert all(not r.faulted for r in records)
    assert all(r.ended is not None and r.ended >= r.time for r in records)
    assert [r.time for r in records] == sorted(r.time for r in records)
    over_http = (await admin.get("requests")).json()["data"]
    assert [r["path"] for r in over_http] == [r.path for r in records]
    assert set(over_http[0]) == {"method", "path", "query", "status", "time", "ended", "faulted"}
    assert (await admin.delete("requests")).status_code == 200
    assert nexus.requests == []
    nexus.clear_requests()


def test_inject_fault_rejects_nonsense() -> None:
    core = LocalNexus()
    with pytest.raises(ValueError, match="regular expression"):
        core.inject_fault(path="(")
    with pytest.raises(ValueError, match="status"):
        core.inject_fault(status=42)
    with pytest.raises(ValueError, match="times"):
        core.inject_fault(times=0)
    with pytest.raises(ValueError, match="needs a status"):
        core.inject_fault(status=None)
    with pytest.raises(ValueError, match="latency"):
        core.inject_fault(latency=-1)


# ---------------------------------------------------------------------------- admin API


async def test_admin_needs_the_first_projects_key(nexus: LocalNexus) -> None:
    _other_id, other_key = nexus.add_project()
    async with httpx.AsyncClient(base_url=f"{nexus.base_url}/_nexus/", trust_env=False) as raw:
        assert (await raw.get("requests")).status_code == 401
        assert (
            await raw.post("faults", json={}, headers={"Secret-Key": other_key})
        ).status_code == 403
        health = await raw.get("health")
        assert health.json() == {"status": "ok", "projectId": nexus.project_id}


async def test_admin_faults_over_http(
    nexus: LocalNexus, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    created = await admin.post(
        "faults",
        json={"method": "GET", "path": "/jobs$", "status": 418, "times": 2, "retryAfter": 3},
    )
    assert created.status_code == 200, created.text
    assert created.json()["status"] == 418
    assert created.json()["times"] == 2
    assert (await client.get("jobs")).status_code == 418
    cleared = await admin.delete("faults")
    assert cleared.json() == {"cleared": 1}
    assert (await client.get("jobs")).status_code == 200
    await admin.post("faults", json={"path": "/jobs$", "drop": True})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get("jobs")
    await admin.post(
        "faults", json={"method": None, "path": "/jobs$", "status": None, "latency": 0.01}
    )
    assert (await client.get("jobs")).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"path": "("}, "regular expression"),
        ({"status": 99}, "`status` must be >= 100"),
        ({"times": 0}, "`times` must be >= 1"),
        ({"status": None}, "needs a status"),
        ({"drop": "yes"}, "booleans"),
        ({"method": 1}, "`method`"),
        ({"latency": "slow"}, "`latency` must be a finite number"),
    ],
)
async def test_admin_fault_validation(
    admin: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    response = await admin.post("faults", json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_admin_projects_and_seeds(
    nexus: LocalNexus, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    made = (
        await admin.post("projects", json={"projectId": "proj_admin", "secretKey": "abc"})
    ).json()
    assert made["projectId"] == "proj_admin"
    assert made["secretKey"] == "abc"
    assert made["deploymentId"].startswith("deploy_")
    assert (await admin.post("projects", json={"projectId": "proj_admin"})).status_code == 409
    assert (await admin.post("projects", json={"projectId": "bad id"})).status_code == 400
    fresh = (await admin.post("projects", json={})).json()
    assert fresh["projectId"].startswith("proj_")
    assert len(fresh["projectId"]) == 5 + 32

    dataset = await admin.post(
        "seed/datasets", json={"urls": [TINY_PNG], "projectId": "proj_admin"}
    )
    webhook = await admin.post(
        "seed/webhooks",
        json={
            "endpoint": receiver.url("/ok"),
            "projectId": "proj_admin",
            "maxRetries": 0,
            "maxBackoffMs": 0,
        },
    )
    assert dataset.status_code == 200
    assert webhook.status_code == 200
    async with api_client(nexus, "proj_admin", "abc") as scoped:
        job = await create_job(
            scoped, dataset.json()["id"], [webhook.json()["id"]], made["deploymentId"]
        )
        assert (await wait_terminal(scoped, job["id"]))["status"]["items"]["Delivered"] == 1
        seeded = await admin.post(
            "seed/logs", json={"jobId": job["id"], "count": 10, "level": "Warning"}
        )
        assert seeded.json() == {"jobId": job["id"], "count": 10}
        warnings = (
            await scoped.get(f"jobs/{job['id']}/logs", params={"minLevel": "Warning"})
        ).json()
        assert len(warnings["entries"]) == 10
    assert (
        await admin.post("seed/logs", json={"jobId": "batchjob_nope", "count": 1})
    ).status_code == 404
    assert (
        await admin.post("seed/logs", json={"jobId": job["id"], "count": 1, "level": "Loud"})
    ).status_code == 400
    assert (await admin.post("seed/datasets", json={"urls": ["ftp://x"]})).status_code == 400
    assert (await admin.post("seed/webhooks", json={"endpoint": "nope"})).status_code == 400
    ties = await admin.put("log-ties", json={"perMs": 4})
    assert ties.json() == {"perMs": 4}
    assert nexus.store.log_clock.per_ms == 4
    await admin.put("log-ties", json={"perMs": None})
    assert nexus.store.log_clock.per_ms is None
