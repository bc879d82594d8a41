"""`batch.webhooks`: request shapes, secrets, input validation."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import pytest

from nexus_async import (
    CreatedWebhook,
    Delivery,
    DeliveryReceiver,
    NotFoundError,
    ServerError,
    ValidationError,
    Webhook,
    WebhookRetries,
    Webhooks,
    WebhookSecret,
    WebhookSpec,
    WebhookTestResponse,
    signing,
)
from nexus_async._convert import structure, unstructure
from nexus_async.models import PaginationResponse
from nexus_async.server import serve_asgi

from . import wire_batch as wire
from .batch_live import live
from .mock import PROJECT, Script, body, error, ok

BASE = f"/projects/{PROJECT}/batch/webhooks"
WEBHOOK_ID = wire.WEBHOOK["id"]
SECRET = base64.b64encode(bytes(range(32))).decode()
ENDPOINT = "https://lambda-url.ap-southeast-1.on.aws/"


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def webhooks(script: Script) -> Webhooks:
    return script.client().get_project(PROJECT).batch.webhooks


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        (wire.WEBHOOK, Webhook),
        (wire.page(wire.WEBHOOK, next_page="n"), PaginationResponse[Webhook]),
        (wire.WEBHOOK_TEST, WebhookTestResponse),
        ({**wire.WEBHOOK_TEST, "body": None, "reason": None}, WebhookTestResponse),
    ],
)
def test_round_trip_is_lossless(data: dict[str, Any], cls: type) -> None:
    assert unstructure(structure(data, cls)) == data


def test_retries_use_the_reference_names() -> None:
    webhook = structure(wire.WEBHOOK, Webhook)
    assert webhook.retries == WebhookRetries(max_retries=3, max_retry_delay=15000)
    assert webhook["retries"]["max_retry_delay"] == 15000


# ------------------------------------------------------------------------- create


async def test_create_sends_the_reference_dict_and_returns_the_secret(
    script: Script, webhooks: Webhooks
) -> None:
    script.replies.append(ok(wire.WEBHOOK))
    webhook = await webhooks.create(
        "aws-lambda",
        {
            "endpoint": ENDPOINT,
            "retries": {"max_retries": 5, "max_retry_delay": 2000},
            "secret": {"contents": SECRET},
        },
    )
    (request,) = script.requests
    assert (request.method, request.url.path) == ("POST", BASE)
    assert body(request) == {
        "name": "aws-lambda",
        "spec": {
            "endpoint": ENDPOINT,
            "retries": {"maxRetries": 5, "maxBackoffMs": 2000},
            "secret": {"contents": SECRET},
        },
    }
    assert isinstance(webhook, CreatedWebhook)
    assert isinstance(webhook, Webhook)
    assert webhook.id == WEBHOOK_ID
    assert webhook.secret == SECRET
    assert webhook["secret"] == SECRET
    assert SECRET not in repr(webhook)


async def test_create_generates_a_fresh_secret_and_default_retries(
    script: Script, webhooks: Webhooks
) -> None:
    script.replies += [ok(wire.WEBHOOK), ok(wire.WEBHOOK)]
    first = await webhooks.create("a", {"endpoint": ENDPOINT})
    second = await webhooks.create("b", WebhookSpec(endpoint=ENDPOINT))

    sent = [body(r)["spec"] for r in script.requests]
    assert [s["retries"] for s in sent] == [{"maxRetries": 3, "maxBackoffMs": 15000}] * 2
    assert [s["secret"]["contents"] for s in sent] == [first.secret, second.secret]
    assert first.secret != second.secret  # never one shared default
    assert len(base64.b64decode(first.secret, validate=True)) == 32


async def test_create_takes_the_typed_spec(script: Script, webhooks: Webhooks) -> None:
    script.replies.append(ok(wire.WEBHOOK))
    spec = WebhookSpec(
        endpoint="http://127.0.0.1:8000/hook",
        retries=WebhookRetries(max_retries=0, max_retry_delay=1),
        secret=WebhookSecret("whsec_" + SECRET),
    )
    webhook = await webhooks.create("typed", spec)
    assert body(script.requests[0])["spec"] == {
        "endpoint": "http://127.0.0.1:8000/hook",
        "retries": {"maxRetries": 0, "maxBackoffMs": 1},
        "secret": {"contents": SECRET},  # the Standard Webhooks prefix is not sent
    }
    assert webhook.secret == SECRET


async def test_max_backoff_ms_is_an_alias_and_missing_retry_fields_default(
    script: Script, webhooks: Webhooks
) -> None:
    script.replies += [ok(wire.WEBHOOK), ok(wire.WEBHOOK)]
    await webhooks.create("a", {"endpoint": ENDPOINT, "retries": {"max_backoff_ms": 500}})
    await webhooks.create("b", {"endpoint": ENDPOINT, "retries": {"max_retries": 1}})
    assert [body(r)["spec"]["retries"] for r in script.requests] == [
        {"maxRetries": 3, "maxBackoffMs": 500},
        {"maxRetries": 1, "maxBackoffMs": 15000},
    ]


async def test_create_is_not_repeated_after_a_server_error(
    script: Script, webhooks: Webhooks
) -> None:
    script.replies.append(error(503))
    with pytest.raises(ServerError):
        await webhooks.create("a", {"endpoint": ENDPOINT})
    assert len(script.requests) == 1


def spec(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"endpoint": ENDPOINT, "secret": {"contents": SECRET}, **changes}
    return {k: v for k, v in data.items() if v is not None}


BAD_SPECS: list[tuple[Any, str]] = [
    (spec(endpoint=None), r"missing required keys \['endpoint'\]"),
    (spec(endpoint="ftp://example.com/hook"), "`webhook_spec.endpoint` must be an http or https"),
    (spec(endpoint="example.com/hook"), "`webhook_spec.endpoint` must be an http or https"),
    (spec(endpoint="https://"), "`webhook_spec.endpoint` must name a host"),
    (spec(endpoint="http:///path"), "`webhook_spec.endpoint` must name a host"),
    (spec(endpoint="https://exa mple.com/"), "whitespace or control characters"),
    (spec(endpoint="https://example.com/\n"), "whitespace or control characters"),
    (spec(endpoint="https://example.com:99999/"), "not a valid URL"),
    (spec(endpoint=""), "`webhook_spec.endpoint` must be 1 to"),
    (spec(endpoint=42), "`webhook_spec.endpoint` must be a string"),
    (spec(retries={"max_retries": -1}), r"`webhook_spec.retries.max_retries` must be >= 0"),
    (spec(retries={"max_retries": "3"}), "`webhook_spec.retries.max_retries` must be an integer"),
    (spec(retries={"max_retries": True}), "`webhook_spec.retries.max_retries` must be an integer"),
    (spec(retries={"max_retry_delay": 0}), "`webhook_spec.retries.max_retry_delay` must be >= 1"),
    (spec(retries={"max_retry_delay": 1.5}), "max_retry_delay` must be an integer"),
    (spec(retries={"maxRetries": 3}), "unknown keys"),
    (spec(retries={"max_retry_delay": 1, "max_backoff_ms": 2}), "not both"),
    (spec(retries=3), "`webhook_spec.retries` must be a dict"),
    (spec(secret={"contents": "not base64!"}), "`webhook_spec.secret.contents` must be valid"),
    (spec(secret={"contents": base64.b64encode(b"x" * 16).decode()}), "got 16"),
    (spec(secret={"contents": base64.b64encode(b"x" * 65).decode()}), "got 65"),
    (spec(secret={"contents": 42}), "must be a base64 string"),
    (spec(secret={"value": SECRET}), "unknown keys"),
    (spec(url=ENDPOINT), "unknown keys"),
    ("https://example.com", "`webhook_spec` must be a dict"),
    (None, "`webhook_spec` must be a dict"),
]


@pytest.mark.parametrize(("webhook_spec", "match"), BAD_SPECS)
async def test_bad_specs_fail_before_anything_is_sent(
    script: Script, webhooks: Webhooks, webhook_spec: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match) as info:
        await webhooks.create("hook", webhook_spec)
    assert SECRET not in str(info.value)
    assert script.requests == []


async def test_a_bad_typed_spec_fails_before_anything_is_sent(
    script: Script, webhooks: Webhooks
) -> None:
    with pytest.raises(ValidationError, match="max_retries"):
        await webhooks.create(
            "hook", WebhookSpec(endpoint=ENDPOINT, retries=WebhookRetries(max_retries=-2))
        )
    with pytest.raises(ValidationError, match="must name a host"):
        await webhooks.create("hook", WebhookSpec(endpoint="https://"))
    with pytest.raises(ValidationError, match="`name`"):
        await webhooks.create("", {"endpoint": ENDPOINT})
    assert script.requests == []


# ------------------------------------------------------ get, list, update, test


async def test_get_list_iter_delete_request_shapes(script: Script, webhooks: Webhooks) -> None:
    script.replies += [
        ok(wire.WEBHOOK),
        ok(wire.page(wire.WEBHOOK)),
        ok(wire.page(wire.WEBHOOK, next_page="c2")),
        ok(wire.page(wire.WEBHOOK)),
        ok({"id": WEBHOOK_ID, "deleted": True}),
    ]
    assert (await webhooks.get(WEBHOOK_ID)).endpoint == ENDPOINT
    assert len((await webhooks.list({"limit": 10})).data) == 1
    assert len([w async for w in webhooks.iter(page_size=1)]) == 2
    assert (await webhooks.delete(WEBHOOK_ID)).deleted is True
    assert [(r.method, r.url.path, dict(r.url.params)) for r in script.requests] == [
        ("GET", f"{BASE}/{WEBHOOK_ID}", {}),
        ("GET", BASE, {"limit": "10"}),
        ("GET", BASE, {"limit": "1"}),
        ("GET", BASE, {"limit": "1", "page": "c2"}),
        ("DELETE", f"{BASE}/{WEBHOOK_ID}", {}),
    ]


async def test_update_patches_only_what_is_given(script: Script, webhooks: Webhooks) -> None:
    script.replies += [ok(wire.WEBHOOK), ok(wire.WEBHOOK), ok(wire.WEBHOOK)]
    await webhooks.update(WEBHOOK_ID, {"endpoint": "https://new.example/hook"})
    await webhooks.update(WEBHOOK_ID, {"retries": {"max_retries": 1, "max_retry_delay": 100}})
    await webhooks.update(WEBHOOK_ID, WebhookSpec(endpoint="https://typed.example/"))
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("PATCH", f"{BASE}/{WEBHOOK_ID}")
    ] * 3
    assert [body(r) for r in script.requests] == [
        {"spec": {"endpoint": "https://new.example/hook"}},
        {"spec": {"retries": {"maxRetries": 1, "maxBackoffMs": 100}}},
        {
            "spec": {
                "endpoint": "https://typed.example/",
                "retries": {"maxRetries": 3, "maxBackoffMs": 15000},
            }
        },
    ]


@pytest.mark.parametrize(
    ("webhook_spec", "match"),
    [
        ({}, "at least one of"),
        ({"secret": {"contents": SECRET}}, "use update_secret"),
        (WebhookSpec(endpoint=ENDPOINT, secret=WebhookSecret(SECRET)), "use update_secret"),
        ({"endpoint": "mailto:me@example.com"}, "http or https"),
        ({"retries": {"max_retries": -1}}, "max_retries"),
        ({"name": "x"}, "unknown keys"),
    ],
)
async def test_bad_updates_fail_before_anything_is_sent(
    script: Script, webhooks: Webhooks, webhook_spec: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        await webhooks.update(WEBHOOK_ID, webhook_spec)
    assert script.requests == []


async def test_update_secret_puts_the_contents(script: Script, webhooks: Webhooks) -> None:
    script.replies.append(ok(wire.WEBHOOK))
    await webhooks.update_secret(WEBHOOK_ID, SECRET)
    (request,) = script.requests
    assert (request.method, request.url.path) == ("PUT", f"{BASE}/{WEBHOOK_ID}/secret")
    assert body(request) == {"contents": SECRET}


@pytest.mark.parametrize(
    ("secret", "match"),
    [
        ("", "must be valid base64|must decode"),
        ("%%%", "must be valid base64"),
        (base64.b64encode(b"short").decode(), "got 5"),
        (None, "must be a base64 string"),
    ],
)
async def test_bad_secrets_fail_before_anything_is_sent(
    script: Script, webhooks: Webhooks, secret: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        await webhooks.update_secret(WEBHOOK_ID, secret)
    assert script.requests == []


async def test_test_posts_to_the_colon_path_and_decodes_the_report(
    script: Script, webhooks: Webhooks
) -> None:
    script.replies.append(ok({**wire.WEBHOOK_TEST, "body": None, "reason": None}))
    report = await webhooks.test(WEBHOOK_ID)
    (request,) = script.requests
    assert (request.method, request.url.path) == ("POST", f"{BASE}/{WEBHOOK_ID}:test")
    assert report == WebhookTestResponse(
        status="Succeeded", response_code=204, latency_ms=648.0, attempt_count=1
    )


async def test_test_is_not_repeated_after_a_server_error(
    script: Script, webhooks: Webhooks
) -> None:
    script.replies.append(error(502))
    with pytest.raises(ServerError):
        await webhooks.test(WEBHOOK_ID)
    assert len(script.requests) == 1


@pytest.mark.parametrize("method", ["get", "delete", "test"])
@pytest.mark.parametrize(
    "bad", ["", "webhook_", "webhook_a/b", "webhook_x:test", "webhook_..", "dataset_1", None]
)
async def test_bad_webhook_ids_fail_before_anything_is_sent(
    script: Script, webhooks: Webhooks, method: str, bad: Any
) -> None:
    with pytest.raises(ValidationError, match="webhook_id"):
        await getattr(webhooks, method)(bad)
    assert script.requests == []


async def test_bad_ids_fail_for_update_and_update_secret(
    script: Script, webhooks: Webhooks
) -> None:
    with pytest.raises(ValidationError, match="webhook_id"):
        await webhooks.update("webhook_a?b", {"endpoint": ENDPOINT})
    with pytest.raises(ValidationError, match="webhook_id"):
        await webhooks.update_secret("webhook_a#b", SECRET)
    assert script.requests == []


# ----------------------------------------------------- live, against LocalNexus


async def test_live_crud(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with live(tmp_path) as (_, batch):
            created = await batch.webhooks.create("crud", {"endpoint": "https://a.test/hook"})
            assert created.retries == WebhookRetries(3, 15000)
            fetched = await batch.webhooks.get(created.id)
            assert not isinstance(fetched, CreatedWebhook)
            assert fetched.endpoint == "https://a.test/hook"

            updated = await batch.webhooks.update(
                created.id,
                {"endpoint": "https://b.test/hook", "retries": {"max_retries": 0}},
            )
            assert updated.endpoint == "https://b.test/hook"
            assert updated.retries == WebhookRetries(0, 15000)
            assert (await batch.webhooks.update_secret(created.id, SECRET)).id == created.id
            assert [w.id async for w in batch.webhooks.iter()] == [created.id]

            assert (await batch.webhooks.delete(created.id)).deleted is True
            with pytest.raises(NotFoundError):
                await batch.webhooks.get(created.id)


async def test_live_secret_rotation(tmp_path: Path) -> None:
    """Rotate with no window in which genuine deliveries are refused."""
    old, new = signing.generate_secret(), signing.generate_secret()

    async def ignore(delivery: Delivery) -> None:
        pass

    receiver = DeliveryReceiver(old, ignore)
    with anyio.fail_after(20):
        async with live(tmp_path) as (_, batch), serve_asgi(receiver.app("/hook")) as url:
            webhook = await batch.webhooks.create(
                "rotating",
                {
                    "endpoint": url + "/hook",
                    "secret": {"contents": old},
                    "retries": {"max_retries": 0, "max_retry_delay": 1},
                },
            )
            assert (await batch.webhooks.test(webhook.id)).status == "Succeeded"

            receiver.secrets = [new, old]  # 1. the receiver learns the new secret
            assert (await batch.webhooks.test(webhook.id)).status == "Succeeded"
            await batch.webhooks.update_secret(webhook.id, new)  # 2. the API signs with it
            assert (await batch.webhooks.test(webhook.id)).status == "Succeeded"
            receiver.secrets = [new]  # 3. the old one is retired
            assert (await batch.webhooks.test(webhook.id)).status == "Succeeded"

            receiver.secrets = [old]  # a receiver that missed the rotation refuses
            report = await batch.webhooks.test(webhook.id)
            assert (report.status, report.response_code) == ("Failed", 401)


async def test_live_test_reports_a_failing_endpoint(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    calls = 0

    async def broken(request: Request) -> JSONResponse:
        nonlocal calls
        calls += 1
        return JSONResponse({"error": "database down"}, status_code=500)

    app = Starlette(routes=[Route("/hook", broken, methods=["POST"])])
    with anyio.fail_after(20):
        async with live(tmp_path) as (_, batch), serve_asgi(app) as url:
            webhook = await batch.webhooks.create(
                "broken",
                {"endpoint": url + "/hook", "retries": {"max_retries": 1, "max_retry_delay": 1}},
            )
            report = await batch.webhooks.test(webhook.id)
    assert report.status == "Failed"
    assert report.response_code == 500
    assert report.attempt_count == 1  # the local server's :test makes one attempt
    assert report.body == ""  # and never returns the endpoint's answer (issue #13)
    assert calls == 1
