"""Auth (401/403) and isolation between projects."""

from __future__ import annotations

import httpx
import pytest

from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import TINY_PNG, create_dataset, create_job, create_webhook

PATHS = [
    ("GET", "jobs"),
    ("POST", "jobs"),
    ("GET", "jobs/batchjob_x"),
    ("PATCH", "jobs/batchjob_x"),
    ("DELETE", "jobs/batchjob_x"),
    ("GET", "jobs/batchjob_x/logs"),
    ("GET", "datasets"),
    ("POST", "datasets"),
    ("GET", "datasets/dataset_x"),
    ("DELETE", "datasets/dataset_x"),
    ("GET", "webhooks"),
    ("POST", "webhooks"),
    ("GET", "webhooks/webhook_x"),
    ("PATCH", "webhooks/webhook_x"),
    ("DELETE", "webhooks/webhook_x"),
    ("PUT", "webhooks/webhook_x/secret"),
    ("POST", "webhooks/webhook_x:test"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
async def test_missing_key_is_401_and_wrong_key_403(
    nexus: LocalNexus, method: str, path: str
) -> None:
    base = f"{nexus.base_url}/projects/{nexus.project_id}/batch/{path}"
    async with httpx.AsyncClient(trust_env=False) as raw:
        missing = await raw.request(method, base, json={})
        wrong = await raw.request(method, base, json={}, headers={"Secret-Key": "nope"})
        empty = await raw.request(method, base, json={}, headers={"Secret-Key": ""})
    assert missing.status_code == 401
    assert missing.json() == {"message": "missing Secret-Key header", "code": "unauthenticated"}
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "forbidden"
    assert empty.status_code == 401


async def test_unknown_project_is_403(nexus: LocalNexus) -> None:
    async with api_client(nexus, project_id="proj_doesnotexist") as other:
        response = await other.get("jobs")
    assert response.status_code == 403
    assert "proj_doesnotexist" in response.json()["message"]


async def test_projects_see_nothing_of_each_other(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: object
) -> None:
    dataset = await create_dataset(client, [TINY_PNG])
    webhook = await create_webhook(client, "http://127.0.0.1:9/unused", max_retries=0)
    job = await create_job(client, dataset["id"], [webhook["id"]], nexus.deployment_id)

    other_id, other_key = nexus.add_project()
    assert other_id != nexus.project_id
    assert other_key != nexus.secret_key
    async with api_client(nexus, other_id, other_key) as other:
        for kind, ident in (
            ("jobs", job["id"]),
            ("datasets", dataset["id"]),
            ("webhooks", webhook["id"]),
        ):
            listed = await other.get(kind)
            assert listed.status_code == 200
            assert listed.json()["data"] == []
            got = await other.get(f"{kind}/{ident}")
            assert got.status_code == 404, got.text
            assert got.json()["code"] == "not_found"
            assert ident not in got.text or "not found" in got.text
        assert (await other.get(f"jobs/{job['id']}/logs")).status_code == 404
        assert (await other.delete(f"jobs/{job['id']}")).status_code == 404
        # Referring to another project's resources when creating a job is a 404 too.
        body = {
            "name": "steal",
            "spec": {
                "datasetId": dataset["id"],
                "deployment": {"kind": "ExistingDeployment", "deploymentId": nexus.deployment_id},
                "resultDelivery": {
                    "destinations": [{"kind": "Webhook", "webhookId": webhook["id"]}]
                },
            },
        }
        stolen = await other.post("jobs", json=body)
        assert stolen.status_code == 404
        assert "dataset" in stolen.json()["message"]
    # The other project's key does not open this project's paths.
    async with api_client(nexus, nexus.project_id, other_key) as crossed:
        assert (await crossed.get(f"jobs/{job['id']}")).status_code == 403
    # And this project still sees its job.
    assert (await client.get(f"jobs/{job['id']}")).status_code == 200


async def test_add_project_with_chosen_id_and_key(nexus: LocalNexus) -> None:
    project_id, key = nexus.add_project("proj_chosen", "k3y")
    assert (project_id, key) == ("proj_chosen", "k3y")
    async with api_client(nexus, project_id, key) as chosen:
        assert (await chosen.get("jobs")).status_code == 200
    with pytest.raises(ValueError, match="already exists"):
        nexus.add_project("proj_chosen")
    with pytest.raises(ValueError, match="proj_"):
        nexus.add_project("project/../x")
