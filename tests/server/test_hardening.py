"""Input the server must refuse before it stores anything (issue #13, items 1 and 3).

A 5xx invites a client to retry, so a 5xx must never follow an effect: a request either
changes something and answers 2xx, or answers 4xx and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nexus_async.server import LocalNexus

from .helpers import (
    TINY_PNG,
    dataset_body,
    idle_job,
    job_body,
)

JSON = dict[str, Any]
LONE = "\ud800"  # a lone surrogate: valid in a JSON escape, not encodable as UTF-8


def _raw(body: JSON) -> bytes:
    """JSON with ASCII escapes, so a lone surrogate travels as the escape ``\\ud800``."""
    return json.dumps(body, ensure_ascii=True).encode()


async def _ids(client: httpx.AsyncClient, collection: str) -> list[str]:
    response = await client.get(collection)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


def _webhook(endpoint: str = "http://127.0.0.1:9/hook", name: str = "w") -> JSON:
    return {"name": name, "spec": {"endpoint": endpoint}}


def _ephemeral_job(dataset_id: str, webhook_id: str, template_name: str) -> JSON:
    body = job_body(dataset_id, [webhook_id], "unused")
    body["spec"]["deployment"] = {
        "kind": "NewEphemeralDeployment",
        "template": {"artifactId": "artifact_1", "name": template_name},
    }
    return body


@pytest.mark.parametrize(
    "place",
    ["dataset name", "webhook name", "job name", "template", "endpoint path", "unknown key"],
)
async def test_lone_surrogates_are_400_and_store_nothing(
    nexus: LocalNexus, client: httpx.AsyncClient, place: str
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG])
    webhook_id = nexus.seed_webhook("http://127.0.0.1:9/unused")
    job = job_body(dataset_id, [webhook_id], nexus.deployment_id)
    collection, body = {
        "dataset name": ("datasets", dataset_body(b"x", name=f"a{LONE}b")),
        "webhook name": ("webhooks", _webhook(name=LONE)),
        "job name": ("jobs", {**job, "name": f"job {LONE}"}),
        "template": ("jobs", _ephemeral_job(dataset_id, webhook_id, LONE)),
        "endpoint path": ("webhooks", _webhook(f"http://127.0.0.1:9/{LONE}")),
        "unknown key": ("webhooks", {**_webhook(), LONE: 1}),
    }[place]
    before = await _ids(client, collection)
    response = await client.post(collection, content=_raw(body))
    assert response.status_code == 400, response.text
    assert "surrogate" in response.json()["message"]
    assert await _ids(client, collection) == before


async def test_lone_surrogates_in_updates_change_nothing(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    webhook_id = nexus.seed_webhook("http://127.0.0.1:9/unused", name="kept")
    response = await client.patch(
        f"webhooks/{webhook_id}", content=_raw({"name": LONE, "spec": {}})
    )
    assert response.status_code == 400
    assert (await client.get(f"webhooks/{webhook_id}")).json()["name"] == "kept"


async def test_an_item_url_with_a_lone_surrogate_fails_processing(
    client: httpx.AsyncClient,
) -> None:
    content = b'{"kind": "Image", "url": "https://example.com/\\ud800.png"}\n'
    created = (await client.post("datasets", json=dataset_body(content))).json()
    upload = created["status"]["source"]["uploadUrl"]
    put = await client.put(upload["url"], headers=upload["headers"], content=content)
    assert put.status_code == 200
    dataset = (await client.get(f"datasets/{created['id']}")).json()
    assert dataset["status"]["overview"] == "FailedProcessing"
    assert "line 1" in dataset["status"]["message"]
    assert "surrogate" in dataset["status"]["message"]
    assert (await client.get("datasets")).status_code == 200


@pytest.mark.parametrize("field", ["startAtTime", "stopAtTime"])
@pytest.mark.parametrize("value", [2**53 + 1, 10**400, 1e300])
async def test_timestamps_beyond_2_53_are_400(
    nexus: LocalNexus, client: httpx.AsyncClient, field: str, value: float
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG])
    webhook_id = nexus.seed_webhook("http://127.0.0.1:9/unused")
    body = job_body(dataset_id, [webhook_id], nexus.deployment_id)
    body["spec"][field] = value
    response = await client.post("jobs", content=json.dumps(body))
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    assert await _ids(client, "jobs") == []


async def test_a_cancel_time_beyond_2_53_is_400(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    job = await idle_job(nexus, client)
    response = await client.patch(
        f"jobs/{job['id']}", content=json.dumps({"spec": {"stopAtTime": 10**400}})
    )
    assert response.status_code == 400
    after = (await client.get(f"jobs/{job['id']}")).json()
    assert after["spec"]["stopAtTime"] == job["spec"]["stopAtTime"]


async def test_dataset_upload_with_odd_lines_never_stays_processing(
    client: httpx.AsyncClient,
) -> None:
    deep = "[" * 5000 + "]" * 5000
    for line in (f'{{"kind": "Image", "url": {deep}}}', deep, '{"kind": "Image", "url": 1e999}'):
        content = (line + "\n").encode()
        created = (await client.post("datasets", json=dataset_body(content))).json()
        upload = created["status"]["source"]["uploadUrl"]
        put = await client.put(upload["url"], headers=upload["headers"], content=content)
        assert put.status_code == 200, put.text
        status = (await client.get(f"datasets/{created['id']}")).json()["status"]
        assert status["overview"] == "FailedProcessing", status
        assert status["message"].startswith("line 1:"), status


@pytest.mark.parametrize("depth", [1000, 100_000])
async def test_deeply_nested_bodies_are_400(client: httpx.AsyncClient, depth: int) -> None:
    body = b'{"name": ' + b"[" * depth + b"]" * depth + b', "spec": {}}'
    response = await client.post("webhooks", content=body)
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["message"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:65536/hook",
        "http://127.0.0.1:99999999/hook",
        "http://example.com/a\x00b",
        "http://example.com/a\x7fb",
        "http://exa\tmple.com/",
        "http://[::1/",
        "http://:80/",
    ],
)
async def test_bad_webhook_endpoints_are_400(client: httpx.AsyncClient, endpoint: str) -> None:
    response = await client.post("webhooks", json=_webhook(endpoint))
    assert response.status_code == 400, response.text
    assert "spec.endpoint" in response.json()["message"]
    assert await _ids(client, "webhooks") == []


async def test_odd_static_paths_are_4xx(nexus: LocalNexus) -> None:
    async with httpx.AsyncClient(trust_env=False) as raw:
        for path in ("a%00b", "img/%00", "%2e%2e/%2e%2e/etc/passwd"):
            response = await raw.get(f"{nexus.base_url}/static/{path}")
            assert 400 <= response.status_code < 500, (path, response.text)
            assert response.json()["code"] in ("bad_request", "not_found")
