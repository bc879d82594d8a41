"""The bare ASGI app (create_app, LocalNexus.app) through httpx.ASGITransport."""

from __future__ import annotations

import httpx
import pytest

from nexus_async.server import LocalNexus, NexusCore, create_app

from .helpers import TINY_PNG, Receiver, create_dataset, create_job, create_webhook, wait_terminal


def asgi_client(app: object, project_id: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url=f"http://nexus.test/projects/{project_id}/batch/",
        headers={"Secret-Key": key},
    )


async def test_without_lifespan_jobs_answer_503_and_the_rest_works() -> None:
    app = create_app(secret_key="k", project_id="proj_asgi")
    core = app.state.nexus
    assert isinstance(core, NexusCore)
    async with asgi_client(app, "proj_asgi", "k") as client:
        dataset = await create_dataset(client, [TINY_PNG])
        upload_url = dataset["status"]["source"]["uploadUrl"]["url"]
        assert upload_url.startswith("http://nexus.test/_nexus/uploads/")
        webhook_id = core.seed_webhook("http://127.0.0.1:9/x")
        refused = await client.post(
            "jobs",
            json={
                "name": "j",
                "spec": {
                    "datasetId": dataset["id"],
                    "deployment": {
                        "kind": "ExistingDeployment",
                        "deploymentId": core.deployment_id,
                    },
                    "resultDelivery": {
                        "destinations": [{"kind": "Webhook", "webhookId": webhook_id}]
                    },
                },
            },
        )
        assert refused.status_code == 503
        assert refused.json()["code"] == "runner_not_running"
        assert (await client.post(f"webhooks/{webhook_id}:test")).status_code == 503
        assert (await client.get("jobs")).json()["data"] == []


async def test_with_lifespan_jobs_run(receiver: Receiver) -> None:
    app = create_app()
    core: NexusCore = app.state.nexus
    async with (
        app.router.lifespan_context(app),
        asgi_client(app, core.project_id, core.secret_key) as client,
    ):
        dataset = await create_dataset(client, [TINY_PNG] * 3)
        webhook = await create_webhook(client, receiver.url("/ok"))
        job = await create_job(client, dataset["id"], [webhook["id"]], core.deployment_id)
        finished = await wait_terminal(client, job["id"])
        assert finished["status"]["items"]["Delivered"] == 3
    assert not core.runner.running  # the lifespan's end stopped the runner


async def test_local_nexus_app_shares_state_and_simulates_drops(nexus: LocalNexus) -> None:
    async with asgi_client(nexus.app, nexus.project_id, nexus.secret_key) as client:
        dataset_id = nexus.seed_dataset([TINY_PNG])
        webhook_id = nexus.seed_webhook("http://127.0.0.1:9/x", max_retries=0)
        job = await create_job(client, dataset_id, [webhook_id], nexus.deployment_id)
        async with httpx.AsyncClient(
            base_url=f"{nexus.base_url}/projects/{nexus.project_id}/batch/",
            headers={"Secret-Key": nexus.secret_key},
            trust_env=False,
        ) as over_tcp:
            assert (await over_tcp.get(f"jobs/{job['id']}")).json()["id"] == job["id"]
        nexus.inject_fault(method="GET", path="/jobs$", drop=True)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("jobs")
        assert (await client.get("jobs")).status_code == 200
