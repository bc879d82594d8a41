"""attrs models of the API's JSON objects.

The classes know nothing about JSON: `nexus_async._convert` maps them to and from
the wire format (camelCase names, PascalCase item counters, `kind`-tagged unions).
Field names are the snake_case ones of the SDK reference, and every model also
answers the reference's dict-style reads (`job["status"]`, `page["next_page"]`).
"""

from __future__ import annotations

import enum
from typing import Any, Generic, TypeVar, Union

import attrs

__all__ = [
    "DeleteResponse",
    "Deployment",
    "DeploymentOptions",
    "DeploymentTemplate",
    "Destination",
    "ExistingDeployment",
    "Job",
    "JobItemStatus",
    "JobLogEntry",
    "JobLogs",
    "JobSpec",
    "JobStatus",
    "JobStatusOverview",
    "LogLevel",
    "NewEphemeralDeployment",
    "PaginationResponse",
    "ResultDelivery",
    "UnknownDeployment",
    "UnknownDestination",
    "WebhookDestination",
]

T = TypeVar("T")


class _DictAccess:
    """The reference SDK's dict-style reads: `model["field"]` and `model.get("field")`."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in attrs.fields_dict(type(self)):  # type: ignore[arg-type]
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in attrs.fields_dict(type(self))  # type: ignore[arg-type]

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or `default` if the model has no such field."""
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> list[str]:
        """The model's field names."""
        return [a.name for a in attrs.fields(type(self))]  # type: ignore[arg-type]


class JobStatusOverview(str, enum.Enum):
    """A job's overall state. `Reached` and `Failed` are terminal.

    The API may add values; an unknown one is kept as a plain `str` and means
    "not finished yet".
    """

    WAITING = "Waiting"
    REACHED = "Reached"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value


class LogLevel(str, enum.Enum):
    """Severity of a log entry, lowest first."""

    DEBUG = "Debug"
    INFO = "Info"
    WARNING = "Warning"
    ERROR = "Error"

    def __str__(self) -> str:
        return self.value


TERMINAL_OVERVIEWS = frozenset({JobStatusOverview.REACHED.value, JobStatusOverview.FAILED.value})


@attrs.frozen
class JobItemStatus(_DictAccess):
    """Per-stage item counters (PascalCase on the wire: `Gathered`, `FailedGather`, ...)."""

    gathered: int
    failed_gather: int
    preprocessed: int
    failed_process: int
    predicted: int
    failed_predict: int
    delivered: int
    failed_deliver: int


@attrs.frozen
class JobStatus(_DictAccess):
    """Where a job stands. A job is finished when `overview` is Reached or Failed."""

    overview: JobStatusOverview | str
    message: str
    update_date: int
    items: JobItemStatus
    reason: str | None = None
    cancelled_at: int | None = None

    @property
    def is_finished(self) -> bool:
        """True once the overview is terminal (Reached or Failed); never judged by counters."""
        return str(self.overview) in TERMINAL_OVERVIEWS


@attrs.frozen
class DeploymentOptions(_DictAccess):
    """Evaluation options of an ephemeral deployment."""

    evaluation_strategy: str | None = None
    evaluation_threshold: float | None = None
    evaluation_group: list[str] | None = None


@attrs.frozen(kw_only=True)
class DeploymentTemplate(_DictAccess):
    """How to create an ephemeral deployment for a job; only `artifact_id` is required."""

    artifact_id: str
    name: str | None = None
    replicas: int | None = None
    region: str | None = None
    version_tag: str | None = None
    instance_id: str | None = None
    options: DeploymentOptions | None = None


@attrs.frozen
class ExistingDeployment(_DictAccess):
    """Run the job on a deployment that already exists (`kind: ExistingDeployment`)."""

    deployment_id: str


@attrs.frozen
class NewEphemeralDeployment(_DictAccess):
    """Create a deployment for the job's lifetime (`kind: NewEphemeralDeployment`)."""

    template: DeploymentTemplate


@attrs.frozen
class UnknownDeployment(_DictAccess):
    """A deployment of a `kind` this SDK version does not know; `data` is its raw JSON object."""

    kind: str
    data: dict[str, Any] = attrs.field(factory=dict)


Deployment = Union[ExistingDeployment, NewEphemeralDeployment, UnknownDeployment]  # noqa: UP007


@attrs.frozen
class WebhookDestination(_DictAccess):
    """Deliver results to a webhook (`kind: Webhook`)."""

    webhook_id: str


@attrs.frozen
class UnknownDestination(_DictAccess):
    """A destination of a `kind` this SDK version does not know; `data` is its raw JSON object."""

    kind: str
    data: dict[str, Any] = attrs.field(factory=dict)


Destination = Union[WebhookDestination, UnknownDestination]  # noqa: UP007


@attrs.frozen
class ResultDelivery(_DictAccess):
    """Where a job's results go."""

    destinations: list[Destination]


@attrs.frozen
class JobSpec(_DictAccess):
    """What a job runs: dataset, deployment, destinations and time window (epoch ms)."""

    dataset_id: str
    deployment: Deployment
    result_delivery: ResultDelivery
    start_at_time: int | None = None
    stop_at_time: int | None = None


@attrs.frozen
class Job(_DictAccess):
    """A batch job."""

    id: str
    object: str
    name: str
    project_id: str
    spec: JobSpec
    status: JobStatus
    create_date: int
    update_date: int

    @property
    def is_finished(self) -> bool:
        """True once the job's overview is terminal (Reached or Failed)."""
        return self.status.is_finished


@attrs.frozen
class PaginationResponse(_DictAccess, Generic[T]):
    """One page of a list; `next_page`/`prev_page` are opaque cursors, None at the ends."""

    next_page: str | None
    prev_page: str | None
    data: list[T]


@attrs.frozen
class DeleteResponse(_DictAccess):
    """The outcome of a delete."""

    id: str
    deleted: bool


@attrs.frozen
class JobLogEntry(_DictAccess):
    """One item-level or job-level log entry."""

    kind: str
    create_time: int
    id: str
    level: LogLevel | str
    item: str
    status: str
    time_ms: float
    reason: str = ""


@attrs.frozen
class JobLogs(_DictAccess):
    """A page of a job's log entries, newest first."""

    id: str
    object: str
    project_id: str
    entries: list[JobLogEntry]
