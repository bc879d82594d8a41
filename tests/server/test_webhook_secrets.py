"""Webhook secrets where the spec is silent (issue #13, item 5)."""

from __future__ import annotations

import base64

import httpx

from .helpers import Receiver, create_webhook


async def test_a_webhook_without_a_secret_gets_one_returned_once(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    spec = {"endpoint": receiver.url("/ok")}
    created = (await client.post("webhooks", json={"name": "w", "spec": spec})).json()
    secret = created["secret"]["contents"]
    assert len(base64.b64decode(secret, validate=True)) == 32
    fetched = (await client.get(f"webhooks/{created['id']}")).json()
    assert "secret" not in fetched
    assert all("secret" not in w for w in (await client.get("webhooks")).json()["data"])
    assert (await client.post(f"webhooks/{created['id']}:test")).json()["status"] == "Succeeded"
    [delivery] = receiver.at("/ok")
    delivery.verify(secret)  # signed with the key the caller was given


async def test_a_chosen_secret_is_not_echoed(client: httpx.AsyncClient, receiver: Receiver) -> None:
    webhook = await create_webhook(
        client, receiver.url("/ok"), secret=base64.b64encode(b"k" * 32).decode()
    )
    assert "secret" not in webhook


async def test_a_secret_in_a_webhook_patch_is_400_pointing_to_the_secret_call(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    webhook = await create_webhook(client, receiver.url("/ok"))
    del webhook["secret"]
    new = {"contents": base64.b64encode(b"n" * 32).decode()}
    for body in ({"name": "x", "spec": {"secret": new}}, {"secret": new, "spec": {}}):
        response = await client.patch(f"webhooks/{webhook['id']}", json=body)
        assert response.status_code == 400, response.text
        assert f"webhooks/{webhook['id']}/secret" in response.json()["message"]
    assert (await client.get(f"webhooks/{webhook['id']}")).json() == webhook
