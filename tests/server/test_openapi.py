"""The OpenAPI document at /openapi.json (issue #13, item 6): it names every batch
operation the server routes, and real answers of the server fit its schemas."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

from nexus_async.server import LocalNexus

from .helpers import Receiver, create_dataset, create_webhook, idle_job

JSON = dict[str, Any]
OPERATIONS = {
    "createJob", "listJobs", "getJob", "cancelJob", "deleteJob", "getJobLogs",
    "createDataset", "listDatasets", "getDataset", "deleteDataset",
    "createWebhook", "listWebhooks", "getWebhook", "updateWebhook", "deleteWebhook",
    "updateWebhookSecret", "testWebhook",
}  # fmt: skip


@pytest.fixture
async def document(nexus: LocalNexus) -> JSON:
    async with httpx.AsyncClient(trust_env=False) as raw:
        response = await raw.get(f"{nexus.base_url}/openapi.json")  # no key needed
    assert response.status_code == 200
    value: JSON = response.json()
    return value


def _operations(document: JSON) -> dict[str, tuple[str, str]]:
    return {
        operation["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def _check(document: JSON, schema: str, value: object) -> None:
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    errors = [error.message for error in jsonschema_rs.validator_for(root).iter_errors(value)]
    assert not errors, (schema, errors, value)


async def test_the_document_is_openapi_3_1_with_the_17_operations(document: JSON) -> None:
    assert document["openapi"] == "3.1.0"
    assert set(_operations(document)) == OPERATIONS
    assert document["components"]["securitySchemes"]["SecretKey"]["name"] == "Secret-Key"
    for operation_id, (_, path) in _operations(document).items():
        operation = document["paths"][path][_operations(document)[operation_id][0].lower()]
        assert {"200", "400", "401", "403", "404"} <= set(operation["responses"]), operation_id


async def test_every_documented_operation_is_routed(nexus: LocalNexus, document: JSON) -> None:
    async with httpx.AsyncClient(base_url=nexus.base_url, trust_env=False) as raw:
        for operation_id, (method, path) in _operations(document).items():
            concrete = path.replace("{projectId}", nexus.project_id)
            for name in ("jobId", "datasetId", "webhookId"):
                concrete = concrete.replace(f"{{{name}}}", f"{name}_1")
            response = await raw.request(method, concrete)  # no key: auth comes first
            assert response.status_code == 401, (operation_id, response.text)
            _check(document, "Error", response.json())


async def test_real_answers_fit_the_document(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver, document: JSON
) -> None:
    dataset = await create_dataset(client, ["data:,x"])
    _check(document, "Dataset", dataset)
    created = await create_webhook(client, receiver.url("/ok"))
    _check(document, "CreatedWebhook", created)
    webhook_id = created["id"]
    job = await idle_job(nexus, client)
    _check(document, "Job", job)
    answers = {
        "Job": [await client.get(f"jobs/{job['id']}")],
        "JobPage": [await client.get("jobs", params={"limit": 1})],
        "JobLogs": [await client.get(f"jobs/{job['id']}/logs")],
        "DatasetPage": [await client.get("datasets")],
        "Webhook": [
            await client.get(f"webhooks/{webhook_id}"),
            await client.patch(f"webhooks/{webhook_id}", json={"spec": {"retries": {}}}),
        ],
        "WebhookPage": [await client.get("webhooks")],
        "WebhookTestResult": [await client.post(f"webhooks/{webhook_id}:test")],
        "Error": [await client.get("jobs/batchjob_missing"), await client.post("jobs", json={})],
    }
    answers["Job"].append(await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": 1}}))
    answers["Deleted"] = [
        await client.delete(f"jobs/{job['id']}"),
        await client.delete(f"webhooks/{webhook_id}"),
        await client.delete(f"datasets/{dataset['id']}"),
    ]
    for schema, responses in answers.items():
        for response in responses:
            _check(document, schema, response.json())
