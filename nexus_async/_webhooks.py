"""`project.batch.webhooks`: where batch jobs deliver their results.

The API never returns a webhook's secret, yet a receiver needs it to verify
deliveries. So `create` returns a `CreatedWebhook` whose `secret` is the one the
webhook was created with: the caller's, or a fresh one generated here (never a
shared default). Keep it (a secret manager, an environment variable) for the
receiver; `update_secret` replaces it later.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import attrs

from . import errors
from ._convert import unstructure
from ._http import HTTPCore, Retry
from ._resource import Collection
from ._runtime import Runtime
from ._validate import check_int, check_keys, check_str
from .models import (
    CreatedWebhook,
    DeleteResponse,
    PaginationResponse,
    Webhook,
    WebhookRetries,
    WebhookSecret,
    WebhookSpec,
    WebhookTestResponse,
)
from .options import MAX_PAGE, Pagination
from .signing import generate_secret

__all__ = ["Webhooks", "check_endpoint", "check_secret"]

MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
_MAX_ENDPOINT = 2048
_SPEC_KEYS = frozenset({"endpoint", "retries", "secret"})
_UPDATE_KEYS = frozenset({"endpoint", "retries"})
_RETRY_KEYS = frozenset({"max_retries", "max_retry_delay", "max_backoff_ms"})
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def check_endpoint(value: Any, name: str = "endpoint") -> str:
    """Return `value` if it is an http(s) URL with a host, else raise `ValidationError`."""
    url = check_str(value, name, max_length=_MAX_ENDPOINT)
    if _BAD_URL_CHARS.search(url):
        raise errors.ValidationError(
            f"`{name}` must not contain whitespace or control characters (got {url!r})"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise errors.ValidationError(f"`{name}` is not a valid URL ({exc}; got {url!r})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise errors.ValidationError(f"`{name}` must be an http or https URL (got {url!r})")
    if not parts.hostname:
        raise errors.ValidationError(f"`{name}` must name a host (got {url!r})")
    return url


def check_secret(value: Any, name: str = "secret") -> str:
    """Return the wire form of a webhook secret: base64 of 24..64 bytes.

    A Standard Webhooks `whsec_` prefix is accepted and removed; `signing.verify`
    accepts either form.
    """
    if not isinstance(value, str):
        raise errors.ValidationError(
            f"`{name}` must be a base64 string (got {type(value).__name__})"
        )
    text = value.removeprefix("whsec_")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # The value is a secret: say what is wrong, never echo it.
        raise errors.ValidationError(f"`{name}` must be valid base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise errors.ValidationError(
            f"`{name}` must decode to {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes "
            f"(got {len(raw)}); use signing.generate_secret()"
        )
    return text


def _retries(value: Any, name: str) -> WebhookRetries:
    if isinstance(value, WebhookRetries):
        data: Mapping[str, Any] = attrs.asdict(value)
    else:
        data = check_keys(value, _RETRY_KEYS, name)
    if "max_retry_delay" in data and "max_backoff_ms" in data:
        raise errors.ValidationError(
            f"`{name}` takes one of `max_retry_delay` or its alias `max_backoff_ms`, not both"
        )
    default = WebhookRetries()
    retries = data.get("max_retries", default.max_retries)
    delay = data.get("max_retry_delay", data.get("max_backoff_ms", default.max_retry_delay))
    return WebhookRetries(
        max_retries=check_int(retries, f"{name}.max_retries", minimum=0),
        max_retry_delay=check_int(delay, f"{name}.max_retry_delay", minimum=1),
    )


def _spec(value: Any) -> WebhookSpec:
    """A validated `WebhookSpec` with its secret filled in, from the typed or dict form."""
    if isinstance(value, WebhookSpec):
        endpoint: Any = value.endpoint
        retries: Any = value.retries
        secret: Any = value.secret
    else:
        data = check_keys(value, _SPEC_KEYS, "webhook_spec")
        if "endpoint" not in data:
            raise errors.ValidationError("`webhook_spec` is missing required keys ['endpoint']")
        endpoint = data["endpoint"]
        retries = data.get("retries")
        secret = data.get("secret")
    if isinstance(secret, WebhookSecret):
        secret = secret.contents
    elif isinstance(secret, Mapping):
        secret = check_keys(secret, frozenset({"contents"}), "webhook_spec.secret").get("contents")
    return WebhookSpec(
        endpoint=check_endpoint(endpoint, "webhook_spec.endpoint"),
        retries=WebhookRetries() if retries is None else _retries(retries, "webhook_spec.retries"),
        secret=WebhookSecret(
            generate_secret()
            if secret is None
            else check_secret(secret, "webhook_spec.secret.contents")
        ),
    )


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
        self, name: str, webhook_spec: WebhookSpec | Mapping[str, Any]
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
        spec = _spec(webhook_spec)
        body = {"name": name, "spec": unstructure(spec)}
        assert spec.secret is not None
        webhook = await self._http.request(
            "POST",
            self._base,
            into=Webhook,
            retry=Retry.UNSENT,
            body=body,
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
        spec: dict[str, Any] = {}
        if isinstance(webhook_spec, WebhookSpec):
            if webhook_spec.secret is not None:
                raise errors.ValidationError(
                    "`webhook_spec.secret` cannot be changed by update(); use update_secret()"
                )
            spec["endpoint"] = check_endpoint(webhook_spec.endpoint, "webhook_spec.endpoint")
            spec["retries"] = unstructure(_retries(webhook_spec.retries, "webhook_spec.retries"))
        else:
            data = check_keys(webhook_spec, _SPEC_KEYS, "webhook_spec")
            if "secret" in data:
                raise errors.ValidationError(
                    "`webhook_spec.secret` cannot be changed by update(); use update_secret()"
                )
            if not data:
                raise errors.ValidationError(
                    "`webhook_spec` must set at least one of ['endpoint', 'retries']"
                )
            if "endpoint" in data:
                spec["endpoint"] = check_endpoint(data["endpoint"], "webhook_spec.endpoint")
            if "retries" in data:
                spec["retries"] = unstructure(_retries(data["retries"], "webhook_spec.retries"))
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
