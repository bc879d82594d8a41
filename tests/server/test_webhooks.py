"""Webhooks: CRUD, secrets (never returned, fresh, rotatable) and the :test call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nexus_async.server import LocalNexus
from nexus_async.signing import generate_secret

from .helpers import Receiver, create_webhook


def assert_webhook_shape(webhook: dict[str, Any]) -> None:
    assert webhook["id"].startswith("webhook_")
    assert webhook["object"] == "webhook"
    assert webhook["projectId"].startswith("proj_")
    assert isinstance(webhook["name"], str)
    assert isinstance(webhook["endpoint"], str)
    assert type(webhook["retries"]["maxRetries"]) is int
    assert type(webhook["retries"]["maxBackoffMs"]) is int
    assert type(webhook["createDate"]) is int
    assert type(webhook["updateDate"]) is int
    assert "secret" not in webhook
    assert "secret" not in str(webhook).lower()


async def test_crud(client: httpx.AsyncClient, receiver: Receiver) -> None:
    created = await create_webhook(client, receiver.url("/ok"), max_retries=2, max_backoff_ms=50)
    generated = created.pop("secret")  # shown once, at creation only
    assert set(generated) == {"contents"}
    assert_webhook_shape(created)
    assert created["retries"] == {"maxRetries": 2, "maxBackoffMs": 50}
    assert (await client.get(f"webhooks/{created['id']}")).json() == created

    patched = await client.patch(
        f"webhooks/{created['id']}",
        json={"spec": {"endpoint": receiver.url("/other"), "retries": {"maxRetries": 5}}},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert_webhook_shape(body)
    assert body["endpoint"] == receiver.url("/other")
    assert body["retries"] == {"maxRetries": 5, "maxBackoffMs": 50}  # partial update
    assert body["updateDate"] >= created["updateDate"]

    listed = (await client.get("webhooks")).json()
    assert [w["id"] for w in listed["data"]] == [created["id"]]
    assert listed["nextPage"] is None
    assert listed["prevPage"] is None

    deleted = await client.delete(f"webhooks/{created['id']}")
    assert deleted.json() == {"id": created["id"], "deleted": True}
    assert (await client.get(f"webhooks/{created['id']}")).status_code == 404


async def test_defaults_and_generated_secrets_are_fresh(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    first = (
        await client.post("webhooks", json={"name": "a", "spec": {"endpoint": "http://x.invalid/"}})
    ).json()
    second = (
        await client.post("webhooks", json={"name": "b", "spec": {"endpoint": "http://x.invalid/"}})
    ).json()
    assert first["retries"] == {"maxRetries": 3, "maxBackoffMs": 15000}
    project = nexus.store.projects[nexus.project_id]
    secrets = [project.webhook(w["id"]).secret for w in (first, second)]
    assert secrets[0] != secrets[1]
    assert all(len(s) == 44 for s in secrets)  # base64 of 32 bytes


async def test_test_call_signs_with_the_current_secret(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    old, new = generate_secret(), generate_secret()
    webhook = await create_webhook(client, receiver.url("/ok"), secret=old)
    result = (await client.post(f"webhooks/{webhook['id']}:test")).json()
    assert result == {
        "status": "Succeeded",
        "responseCode": 200,
        "latencyMs": result["latencyMs"],
        "attemptCount": 1,
        "body": "",  # the endpoint's answer is never handed to the caller
        "reason": "",
    }
    assert type(result["latencyMs"]) is int  # the reference SDK decodes it as an int
    assert result["latencyMs"] >= 0
    [delivery] = receiver.at("/ok")
    delivery.verify(old)
    payload = delivery.json
    assert payload["test"] is True
    assert payload["predictions"] == []
    assert payload["deliveryId"] == delivery.id

    rotated = await client.put(f"webhooks/{webhook['id']}/secret", json={"contents": new})
    assert rotated.status_code == 200
    assert_webhook_shape(rotated.json())
    await client.post(f"webhooks/{webhook['id']}:test")
    latest = receiver.at("/ok")[-1]
    assert latest.verifies(new)
    assert not latest.verifies(old)


async def test_test_call_reports_one_attempt(client: httpx.AsyncClient, receiver: Receiver) -> None:
    webhook = await create_webhook(client, receiver.url("/down"), max_retries=2, max_backoff_ms=5)
    result = (await client.post(f"webhooks/{webhook['id']}:test")).json()
    assert result["status"] == "Failed"
    assert result["responseCode"] == 500
    assert result["attemptCount"] == 1
    assert result["reason"] == "HTTP 500"
    assert result["body"] == ""
    assert len(receiver.at("/down")) == 1

    flaky = await create_webhook(client, receiver.url("/flaky/1"), max_retries=2, max_backoff_ms=5)
    first = (await client.post(f"webhooks/{flaky['id']}:test")).json()
    assert (first["status"], first["attemptCount"]) == ("Failed", 1)
    second = (await client.post(f"webhooks/{flaky['id']}:test")).json()
    assert (second["status"], second["attemptCount"]) == ("Failed", 1)  # a new deliveryId


async def test_test_call_to_a_closed_port(client: httpx.AsyncClient) -> None:
    webhook = await create_webhook(client, "http://127.0.0.1:9/nothing", max_retries=0)
    result = (await client.post(f"webhooks/{webhook['id']}:test")).json()
    assert result["status"] == "Failed"
    assert result["responseCode"] == 0
    assert result["attemptCount"] == 1
    assert result["reason"]
    assert result["body"] == ""


async def test_test_path_needs_post_and_a_known_webhook(client: httpx.AsyncClient) -> None:
    assert (await client.post("webhooks/webhook_missing:test")).status_code == 404
    wrong_method = await client.get("webhooks/webhook_missing:test")
    assert wrong_method.status_code == 404  # read as the id "webhook_missing:test"
    assert (await client.put("webhooks/webhook_missing:test")).status_code == 405


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "`spec.endpoint` is required"),
        ({"endpoint": 3}, "`spec.endpoint` must be a string"),
        ({"endpoint": "ftp://x"}, "`spec.endpoint` must be an http(s) URL"),
        ({"endpoint": "http://"}, "`spec.endpoint` must be an http(s) URL"),
        ({"endpoint": "http://x", "secret": "abc"}, "`spec.secret` must be an object"),
        ({"endpoint": "http://x", "secret": {}}, "`spec.secret.contents` is required"),
        ({"endpoint": "http://x", "secret": {"contents": "!!"}}, "must be base64"),
        ({"endpoint": "http://x", "secret": {"contents": "YWJj"}}, "24..64 bytes"),
        (
            {"endpoint": "http://x", "retries": {"maxRetries": -1}},
            "`spec.retries.maxRetries` must be >= 0",
        ),
        (
            {"endpoint": "http://x", "retries": {"maxRetries": 1.5}},
            "`spec.retries.maxRetries` must be an integer",
        ),
        (
            {"endpoint": "http://x", "retries": {"maxBackoffMs": True}},
            "`spec.retries.maxBackoffMs` must be an integer",
        ),
        ({"endpoint": "http://x", "retries": []}, "`spec.retries` must be an object"),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient, spec: dict[str, Any], message: str
) -> None:
    response = await client.post("webhooks", json={"name": "w", "spec": spec})
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_update_validation_changes_nothing(client: httpx.AsyncClient) -> None:
    webhook = await create_webhook(client, "http://x.invalid/")
    bad = await client.patch(
        f"webhooks/{webhook['id']}",
        json={"spec": {"endpoint": "http://y.invalid/", "retries": {"maxBackoffMs": -5}}},
    )
    assert bad.status_code == 400
    assert "maxBackoffMs" in bad.json()["message"]
    assert (await client.get(f"webhooks/{webhook['id']}")).json()["endpoint"] == "http://x.invalid/"
    assert (await client.patch(f"webhooks/{webhook['id']}", json={})).status_code == 400
    secret = await client.put(f"webhooks/{webhook['id']}/secret", json={"contents": "short"})
    assert secret.status_code == 400
    assert "`contents` must be base64" in secret.json()["message"]
    assert (
        await client.put("webhooks/webhook_nope/secret", json={"contents": generate_secret()})
    ).status_code == 404
