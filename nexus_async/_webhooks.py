"""`project.batch.webhooks`: where batch jobs deliver their results.

The API never returns a webhook's secret, yet a receiver needs it to verify
deliveries. So `create` returns a `CreatedWebhook` whose `secret` is the one the
webhook was created with: the caller's, or a fresh one generated here (never a
shared default). Keep it (a secret manager, an environment variable) for the
receiver; `update_secret` replaces it later.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import attrs

from ._convert import unstructure
from ._create import create_once
from ._http import HTTPCore, Retry
from ._resource import Collection
from ._runtime import Runtime
from ._validate import check_secret, check_str
from .models import (
    CreatedWebhook,
    DeleteResponse,
    PaginationResponse,
    Webhook,
    WebhookSpec,
    WebhookTestResponse,
)
from .options import MAX_PAGE, Pagination, coerce_webhook_spec, coerce_webhook_update

__all__ = ["Webhooks", "check_secret"]


class Webhooks(Collection[Webhook]):
    """The webhooks of one project. Get it as `client.get_project(...).batch.webhooks`."""

    def __init__(self, http: HTTPCore, project_id: str, runtime: Runtime) -> None:
        super().__init__(
            http,
            project_id,
            runtime,
            segment="webhooks",
            model=Webhook,
            prefix="webhook_",
            id_name="webhook_id",
        )

    async def create(
        self, name: str, webhook_spec: WebhookSpec | Mapping[str, Any], *, recover: bool = True
    ) -> CreatedWebhook:
        """Create a webhook that jobs can deliver results to.

        Args:
            name: The webhook's name.
            webhook_spec: A `WebhookSpec`, or the reference SDK's dict:
                `{"endpoint": "https://...", "retries": {"max_retries": 3,
                "max_retry_delay": 15000}, "secret": {"contents": <base64>}}`.
                `retries` defaults to 3 retries with backoff capped at 15000 ms
                (`max_backoff_ms` is accepted as an alias of `max_retry_delay`).
                Without `secret`, a fresh one (32 random bytes) is generated.
            recover: When the answer was lost (or a 500/502/504 may follow the
                effect), find the webhook this call made (same name, endpoint and
                retries, created during the attempt, not claimed by another call of
                this client) with about one list page, and send again only when it
                provably does not exist; False raises instead. As for `jobs.create`,
                identical creates racing from different processes cannot be told
                apart (and the secret returned is the one this call sent).

        Returns:
            The webhook, with `.secret`: the secret its deliveries are signed with.
            The API never returns it again, so store it for your receiver.

        Raises:
            ValidationError: a bad name, endpoint (http/https with a host), retry
                count (>= 0), backoff (>= 1 ms) or secret (base64 of 24..64 bytes);
                nothing was sent.

        Example:
            webhook = await webhooks.create("results", {"endpoint": "https://me.example/hook"})
            save_somewhere(webhook.id, webhook.secret)
        """
        check_str(name, "name")
        spec = coerce_webhook_spec(webhook_spec)
        body = {"name": name, "spec": unstructure(spec)}
        assert spec.secret is not None
        webhook = await create_once(
            self._http,
            self._runtime.creates,
            self._base,
            body,
            into=Webhook,
            matches=lambda hook: (
                hook.name == name
                and hook.endpoint == spec.endpoint
                and hook.retries == spec.retries
            ),
            recover=recover,
            redact=(spec.secret.contents,),
        )
        return CreatedWebhook(**attrs.asdict(webhook, recurse=False), secret=spec.secret.contents)

    async def get(self, webhook_id: str) -> Webhook:
        """The webhook with this ID (without its secret, which the API never returns)."""
        return await self._fetch(webhook_id)

    async def list(
        self, pagination: Pagination | Mapping[str, Any] | None = None
    ) -> PaginationResponse[Webhook]:
        """One page of the project's webhooks, newest first.

        Args:
            pagination: `{"limit": 1..1000 (default 1000), "page": cursor}` or a `Pagination`.
        """
        return await self._page(pagination)

    def iter(self, *, page_size: int = MAX_PAGE) -> AsyncGenerator[Webhook, None]:
        """Every webhook of the project across all pages, newest first."""
        return self._all(page_size)

    async def update(
        self, webhook_id: str, webhook_spec: WebhookSpec | Mapping[str, Any]
    ) -> Webhook:
        """Change a webhook's endpoint and/or retry policy.

        Args:
            webhook_id: The webhook.
            webhook_spec: A dict with `endpoint` and/or `retries` (as for `create`),
                or a `WebhookSpec` (its endpoint and retries are sent). Keys left out
                stay as they are; retry fields left out of `retries` take their
                defaults. The secret is changed only by `update_secret`.

        Example:
            await webhooks.update(webhook_id, {"endpoint": "https://new.example/hook"})
        """
        self._path(webhook_id)  # checked first
        spec = unstructure(coerce_webhook_update(webhook_spec))
        return await self._about(webhook_id, "PATCH", into=Webhook, body={"spec": spec})

    async def update_secret(self, webhook_id: str, secret: str) -> Webhook:
        """Replace the webhook's signing secret.

        Deliveries are signed with the new secret from now on; retries of older
        ones too. To rotate without dropping deliveries, let the receiver accept
        both secrets (`verify_delivery([new, old], ...)`) until in-flight
        deliveries have drained.

        Args:
            webhook_id: The webhook.
            secret: base64 of 24..64 bytes, e.g. `signing.generate_secret()`.
        """
        self._path(webhook_id)  # checked first
        body = {"contents": check_secret(secret, "secret")}
        return await self._about(
            webhook_id, "PUT", into=Webhook, suffix="/secret", body=body, redact=(body["contents"],)
        )

    async def test(self, webhook_id: str) -> WebhookTestResponse:
        """Have the API send a sample delivery to the webhook and report how it went.

        Not retried by us: each call makes the API deliver again.

        Example:
            result = await webhooks.test(webhook_id)
            assert result.response_code == 200, result.reason
        """
        path = self._path(webhook_id, ":test")
        return await self._http.request("POST", path, into=WebhookTestResponse, retry=Retry.UNSENT)

    async def delete(self, webhook_id: str) -> DeleteResponse:
        """Delete a webhook.

        If an earlier attempt of this call was cut off after the API deleted the
        webhook, the retry's 404 is reported as the deletion it is.
        """
        return await self._remove(webhook_id)
