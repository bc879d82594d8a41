"""Typed arguments of the job and webhook methods.

Each method also takes the reference SDK's plain dict (`{"dataset_id": ...}`);
`coerce` (for webhooks, `coerce_webhook_spec` and `coerce_webhook_update`) turns either form into
the typed one, and every check runs then, before any request is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from ._validate import check_http_url, check_id, check_int, check_keys, check_secret, check_str
from .errors import ValidationError
from .models import (
    DeploymentOptions,
    DeploymentTemplate,
    ExistingDeployment,
    JobSpec,
    LogLevel,
    NewEphemeralDeployment,
    ResultDelivery,
    WebhookDestination,
    WebhookRetries,
    WebhookSecret,
    WebhookSpec,
)
from .signing import generate_secret

__all__ = ["JobOptions", "LogsFilter", "Pagination", "coerce_webhook_spec", "coerce_webhook_update"]

_O = TypeVar("_O", "JobOptions", "LogsFilter", "Pagination")

MAX_PAGE = 1000
_TEMPLATE_KEYS = frozenset({"name", "replicas", "region", "version_tag", "instance_id", "options"})
_TEMPLATE_OPTION_KEYS = frozenset(
    {"evaluation_strategy", "evaluation_threshold", "evaluation_group"}
)


def _coerce(cls: type[_O], value: Any, name: str) -> _O:
    if isinstance(value, cls):
        return value
    fields = attrs.fields(cls)
    data = check_keys(value, frozenset(a.name for a in fields), name)
    missing = [a.name for a in fields if a.default is attrs.NOTHING and a.name not in data]
    if missing:
        raise ValidationError(f"`{name}` is missing required keys {missing}")
    return cls(**data)


def _check_time(value: Any, name: str) -> int | None:
    if value is None:
        return None
    return check_int(value, name, minimum=0)


@attrs.frozen(kw_only=True)
class JobOptions:
    """What `jobs.create` runs.

    Exactly one of `deployment_id` (an existing deployment) or `artifact_id` (a new
    ephemeral deployment, optionally shaped by `deployment_metadata`) is required.
    Times are epoch milliseconds; the API defaults `start_at_time` to now and
    `stop_at_time` to three days after the start.

    Example:
        JobOptions(dataset_id="dataset_...", webhook_id="webhook_...", deployment_id="deploy_...")
    """

    dataset_id: str
    webhook_id: str
    deployment_id: str | None = None
    artifact_id: str | None = None
    deployment_metadata: Mapping[str, Any] | None = None
    start_at_time: int | None = None
    stop_at_time: int | None = None

    def __attrs_post_init__(self) -> None:
        check_id(self.dataset_id, "dataset_", "dataset_id")
        check_id(self.webhook_id, "webhook_", "webhook_id")
        if (self.deployment_id is None) == (self.artifact_id is None):
            raise ValidationError(
                "exactly one of `deployment_id` or `artifact_id` is required "
                f"(got deployment_id={self.deployment_id!r}, artifact_id={self.artifact_id!r})"
            )
        if self.deployment_id is not None:
            check_id(self.deployment_id, "deploy_", "deployment_id")
            if self.deployment_metadata is not None:
                raise ValidationError(
                    "`deployment_metadata` describes a new deployment and needs `artifact_id`, "
                    "not `deployment_id`"
                )
        if self.artifact_id is not None:
            check_id(self.artifact_id, "artifact_", "artifact_id")
        if self.deployment_metadata is not None:
            self._template()  # validates the metadata now, not at send time
        start = _check_time(self.start_at_time, "start_at_time")
        stop = _check_time(self.stop_at_time, "stop_at_time")
        if start is not None and stop is not None and stop <= start:
            raise ValidationError(
                f"`stop_at_time` must be later than `start_at_time` (got {stop} <= {start})"
            )

    @classmethod
    def coerce(cls, value: JobOptions | Mapping[str, Any]) -> JobOptions:
        """A `JobOptions`, or the reference SDK's dict of the same keys."""
        return _coerce(cls, value, "job_options")

    def _template(self) -> DeploymentTemplate:
        assert self.artifact_id is not None
        meta = dict(
            check_keys(self.deployment_metadata or {}, _TEMPLATE_KEYS, "deployment_metadata")
        )
        options = meta.pop("options", None)
        if options is not None:
            options = DeploymentOptions(
                **check_keys(options, _TEMPLATE_OPTION_KEYS, "deployment_metadata.options")
            )
        if meta.get("name") is not None:
            check_str(meta["name"], "deployment_metadata.name")
        if meta.get("replicas") is not None:
            check_int(meta["replicas"], "deployment_metadata.replicas", minimum=1)
        for key in ("region", "version_tag", "instance_id"):
            if meta.get(key) is not None:
                check_str(meta[key], f"deployment_metadata.{key}")
        return DeploymentTemplate(artifact_id=self.artifact_id, options=options, **meta)

    def to_spec(self) -> JobSpec:
        """The wire `JobSpec` these options describe."""
        deployment: ExistingDeployment | NewEphemeralDeployment
        if self.deployment_id is not None:
            deployment = ExistingDeployment(deployment_id=self.deployment_id)
        else:
            deployment = NewEphemeralDeployment(template=self._template())
        return JobSpec(
            dataset_id=self.dataset_id,
            deployment=deployment,
            result_delivery=ResultDelivery(
                destinations=[WebhookDestination(webhook_id=self.webhook_id)]
            ),
            start_at_time=self.start_at_time,
            stop_at_time=self.stop_at_time,
        )


@attrs.frozen(kw_only=True)
class LogsFilter:
    """Which log entries `get_logs` / `get_all_logs` return.

    Args:
        before_time: Only entries with `create_time <= before_time` (epoch ms, inclusive).
        after_time: Only entries with `create_time > after_time` (epoch ms, exclusive).
        min_level: Lowest severity included (`"Debug"`, `"Info"`, `"Warning"`, `"Error"`).
        max_entries: Entries per response, 1..1000 (default 1000); for `get_all_logs`
            this is the page size, not a total.
    """

    before_time: int | None = None
    after_time: int | None = None
    min_level: LogLevel | str | None = None
    max_entries: int | None = None

    def __attrs_post_init__(self) -> None:
        before = _check_time(self.before_time, "before_time")
        after = _check_time(self.after_time, "after_time")
        if before is not None and after is not None and after >= before:
            raise ValidationError(
                f"`after_time` must be earlier than `before_time` (got {after} >= {before})"
            )
        if self.min_level is not None and (
            not isinstance(self.min_level, str)
            or self.min_level not in {lv.value for lv in LogLevel}
        ):
            raise ValidationError(
                f"`min_level` must be one of {[lv.value for lv in LogLevel]} "
                f"(got {self.min_level!r})"
            )
        if self.max_entries is not None:
            check_int(self.max_entries, "max_entries", minimum=1, maximum=MAX_PAGE)

    @classmethod
    def coerce(cls, value: LogsFilter | Mapping[str, Any] | None) -> LogsFilter:
        """A `LogsFilter`, the reference SDK's dict of the same keys, or None for no filter."""
        return cls() if value is None else _coerce(cls, value, "logs_filter")

    def to_params(self) -> dict[str, str]:
        """Query parameters, camelCase, leaving out what is unset."""
        params: dict[str, str] = {}
        if self.before_time is not None:
            params["beforeTime"] = str(self.before_time)
        if self.after_time is not None:
            params["afterTime"] = str(self.after_time)
        if self.min_level is not None:
            params["minLevel"] = str(self.min_level)
        if self.max_entries is not None:
            params["maxEntries"] = str(self.max_entries)
        return params


@attrs.frozen(kw_only=True)
class Pagination:
    """Which page of a list: `limit` items (1..1000, default 1000) from cursor `page`."""

    limit: int | None = None
    page: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.limit is not None:
            check_int(self.limit, "limit", minimum=1, maximum=MAX_PAGE)
        if self.page is not None:
            check_str(self.page, "page", max_length=4096)

    @classmethod
    def coerce(cls, value: Pagination | Mapping[str, Any] | None) -> Pagination:
        """A `Pagination`, the reference SDK's dict (`limit`, `page`), or None for page one."""
        return cls() if value is None else _coerce(cls, value, "pagination")

    def to_params(self) -> dict[str, str]:
        """Query parameters, leaving out what is unset."""
        params: dict[str, str] = {}
        if self.limit is not None:
            params["limit"] = str(self.limit)
        if self.page is not None:
            params["page"] = self.page
        return params


# ------------------------------------------------------------------------ webhooks

_WEBHOOK_KEYS = frozenset({"endpoint", "retries", "secret"})
_RETRY_KEYS = frozenset({"max_retries", "max_retry_delay", "max_backoff_ms"})
_MAX_ENDPOINT = 2048


def _webhook_retries(value: Any, name: str) -> WebhookRetries:
    if isinstance(value, WebhookRetries):
        data: Mapping[str, Any] = attrs.asdict(value)
    else:
        data = check_keys(value, _RETRY_KEYS, name)
    if "max_retry_delay" in data and "max_backoff_ms" in data:
        raise ValidationError(
            f"`{name}` takes one of `max_retry_delay` or its alias `max_backoff_ms`, not both"
        )
    default = WebhookRetries()
    retries = data.get("max_retries", default.max_retries)
    delay = data.get("max_retry_delay", data.get("max_backoff_ms", default.max_retry_delay))
    return WebhookRetries(
        max_retries=check_int(retries, f"{name}.max_retries", minimum=0),
        max_retry_delay=check_int(delay, f"{name}.max_retry_delay", minimum=1),
    )


def _webhook_fields(value: Any, name: str) -> dict[str, Any]:
    """The set fields of a `WebhookSpec` or of the reference SDK's dict, keys checked."""
    if isinstance(value, WebhookSpec):
        fields = {"endpoint": value.endpoint, "retries": value.retries, "secret": value.secret}
        return {k: v for k, v in fields.items() if v is not None}
    return dict(check_keys(value, _WEBHOOK_KEYS, name))


def coerce_webhook_spec(
    value: WebhookSpec | Mapping[str, Any], name: str = "webhook_spec"
) -> WebhookSpec:
    """A checked `WebhookSpec` for `webhooks.create`, its secret filled in.

    Takes a `WebhookSpec` or the reference SDK's dict of the same keys; `retries`
    defaults to `WebhookRetries()`, and without a secret a fresh one is generated.
    """
    data = _webhook_fields(value, name)
    if "endpoint" not in data:
        raise ValidationError(f"`{name}` is missing required keys ['endpoint']")
    secret = data.get("secret")
    if isinstance(secret, WebhookSecret):
        secret = secret.contents
    elif isinstance(secret, Mapping):
        secret = check_keys(secret, frozenset({"contents"}), f"{name}.secret").get("contents")
    retries = data.get("retries")
    return WebhookSpec(
        endpoint=check_http_url(data["endpoint"], f"{name}.endpoint", max_length=_MAX_ENDPOINT),
        retries=WebhookRetries()
        if retries is None
        else _webhook_retries(retries, f"{name}.retries"),
        secret=WebhookSecret(
            generate_secret() if secret is None else check_secret(secret, f"{name}.secret.contents")
        ),
    )


def coerce_webhook_update(
    value: WebhookSpec | Mapping[str, Any], name: str = "webhook_spec"
) -> dict[str, Any]:
    """The checked `spec` of a `webhooks.update`: the endpoint and/or retries to change.

    A `WebhookSpec` sends its endpoint and retries; a dict only the keys it has.
    The secret is changed only by `update_secret`.
    """
    data = _webhook_fields(value, name)
    if "secret" in data:
        raise ValidationError(f"`{name}.secret` cannot be changed by update(); use update_secret()")
    if not data:
        raise ValidationError(f"`{name}` must set at least one of ['endpoint', 'retries']")
    spec: dict[str, Any] = {}
    if "endpoint" in data:
        spec["endpoint"] = check_http_url(
            data["endpoint"], f"{name}.endpoint", max_length=_MAX_ENDPOINT
        )
    if "retries" in data:
        spec["retries"] = _webhook_retries(data["retries"], f"{name}.retries")
    return spec
