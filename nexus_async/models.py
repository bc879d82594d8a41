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
    "CreatedWebhook",
    "Dataset",
    "DatasetSource",
    "DatasetSourceSpec",
    "DatasetSpec",
    "DatasetStatus",
    "DatasetStatusOverview",
    "DatasetUploadUrl",
    "DeleteResponse",
    "Delivery",
    "DeliveryItem",
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
    "Prediction",
    "PredictionTag",
    "ResultDelivery",
    "UnknownDeployment",
    "UnknownDestination",
    "Webhook",
    "WebhookDestination",
    "WebhookRetries",
    "WebhookSecret",
    "WebhookSpec",
    "WebhookTestResponse",
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

    @property
    def failed(self) -> int:
        """Items that failed at any stage."""
        return self.failed_gather + self.failed_process + self.failed_predict + self.failed_deliver

    @property
    def ended(self) -> int:
        """Items that left the pipeline: delivered, or failed at some stage."""
        return self.delivered + self.failed


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


# --------------------------------------------------------------------------------------
# Datasets, webhooks and result deliveries.


class DatasetStatusOverview(str, enum.Enum):
    """A dataset's state. `Uploaded`/`Processed` mean ready; the `Failed*` ones are final.

    The API may add values; an unknown one is kept as a plain `str`.
    """

    WAITING = "Waiting"
    UPLOADING = "Uploading"
    UPLOADED = "Uploaded"
    PROCESSING = "Processing"
    PROCESSED = "Processed"
    FAILED_UPLOAD = "FailedUpload"
    FAILED_PROCESSING = "FailedProcessing"

    def __str__(self) -> str:
        return self.value


DATASET_READY = frozenset(
    {DatasetStatusOverview.UPLOADED.value, DatasetStatusOverview.PROCESSED.value}
)
DATASET_FAILED = frozenset(
    {DatasetStatusOverview.FAILED_UPLOAD.value, DatasetStatusOverview.FAILED_PROCESSING.value}
)


@attrs.frozen
class DatasetUploadUrl(_DictAccess):
    """Where and how to upload a dataset's file: send `method` to `url` with `headers`.

    `url` is a pre-signed credential for this one upload, so it is left out of reprs.
    """

    method: str
    url: str = attrs.field(repr=False)
    headers: dict[str, str]
    expires_at_time: int


@attrs.frozen
class DatasetSource(_DictAccess):
    """Where a dataset's items come from; `size_bytes`/`crc32c` echo the declared file."""

    kind: str
    upload_url: DatasetUploadUrl
    size_bytes: int | None = None
    crc32c: str | None = None


@attrs.frozen
class DatasetStatus(_DictAccess):
    """Where a dataset stands; see `DatasetStatusOverview`."""

    overview: DatasetStatusOverview | str
    message: str
    update_time: int
    item_count: int
    source: DatasetSource

    @property
    def is_ready(self) -> bool:
        """True once the file is uploaded (`Uploaded` or `Processed`): jobs may use it."""
        return str(self.overview) in DATASET_READY

    @property
    def is_failed(self) -> bool:
        """True if the upload or its processing failed (`FailedUpload`, `FailedProcessing`)."""
        return str(self.overview) in DATASET_FAILED

    @property
    def is_finished(self) -> bool:
        """True once nothing changes any more without the caller: ready or failed."""
        return self.is_ready or self.is_failed


@attrs.frozen
class Dataset(_DictAccess):
    """A dataset: the items (image URLs) a job predicts on."""

    id: str
    object: str
    name: str
    project_id: str
    expiry_time: int
    create_date: int
    update_date: int
    status: DatasetStatus


@attrs.frozen(kw_only=True)
class DatasetSourceSpec(_DictAccess):
    """The file a new dataset declares: its size in bytes and base64 CRC32C."""

    size_bytes: int
    crc32c: str
    kind: str = "UploadedNewlineDelimitedJsonFile"


@attrs.frozen
class DatasetSpec(_DictAccess):
    """The `spec` of a dataset create request."""

    source: DatasetSourceSpec


@attrs.frozen
class WebhookRetries(_DictAccess):
    """How the API retries a failed delivery (wire: `maxRetries`, `maxBackoffMs`).

    `max_retry_delay` is the cap on the backoff between attempts, in milliseconds.
    """

    max_retries: int = 3
    max_retry_delay: int = 15_000


@attrs.frozen
class WebhookSecret(_DictAccess):
    """A webhook signing secret: base64 of at least 24 random bytes (32 recommended)."""

    contents: str = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class WebhookSpec(_DictAccess):
    """What `webhooks.create` sets up; a fresh secret is generated when `secret` is None."""

    endpoint: str
    retries: WebhookRetries = attrs.field(factory=WebhookRetries)
    secret: WebhookSecret | None = None


@attrs.frozen
class Webhook(_DictAccess):
    """A webhook results are delivered to. The API never returns its secret."""

    id: str
    object: str
    project_id: str
    name: str
    endpoint: str
    retries: WebhookRetries
    create_date: int
    update_date: int


@attrs.frozen
class CreatedWebhook(Webhook):
    """The webhook `webhooks.create` made, with the `secret` its deliveries are signed with.

    This is the only time the secret is available: the API never returns it. Store
    it where your receiver can read it (`verify_delivery`, `receiver_app`).
    """

    secret: str = attrs.field(repr=False)


@attrs.frozen
class WebhookTestResponse(_DictAccess):
    """The outcome of `webhooks.test`: how the endpoint answered a sample delivery."""

    status: str
    response_code: int
    latency_ms: float
    attempt_count: int
    body: str | None = None
    reason: str | None = None


@attrs.frozen
class DeliveryItem(_DictAccess):
    """The dataset item a delivery is about."""

    kind: str
    url: str


@attrs.frozen
class PredictionTag(_DictAccess):
    """The class a prediction names."""

    id: int
    name: str


@attrs.frozen
class Prediction(_DictAccess):
    """One predicted object.

    `bound` is four `[x, y]` corners normalised to 0..1 (top-left, bottom-left,
    bottom-right, top-right) when `bound_type` is `"rectangle"`.
    """

    annotation_id: int
    tag: PredictionTag
    confidence: float
    bound_type: str
    bound: list[list[float]]


@attrs.frozen
class Delivery(_DictAccess):
    """One result a job delivers to a webhook: an item and its predictions.

    `delivery_id` is the same across the API's retries of one delivery, so receivers
    can drop duplicates by it.
    """

    job_id: str
    project_id: str
    item: DeliveryItem
    delivery_id: str
    create_time: int
    predictions: list[Prediction]
