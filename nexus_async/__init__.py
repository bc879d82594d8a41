"""nexus_async: an asynchronous SDK for Datature Nexus batch inference jobs.

Example:
    async with nexus_async.AsyncClient() as client:
        jobs = client.get_project("proj_...").batch.jobs
        job = await jobs.wait_until_done("batchjob_...")
"""

import attrs

from ._backoff import Backoff, RetryEvent, RetryPolicy
from ._client import AsyncClient, Batch, Project
from ._convert import structure, unstructure
from ._datasets import Datasets
from ._http import HTTPStats
from ._jobs import Jobs
from ._logs import LogCursor, LogStream
from ._runtime import Diagnostics, PollerDiagnostics
from ._transport import TransportStats
from ._version import __version__
from ._waiting import AsCompleted, JobProgress, Wakeups
from ._webhooks import Webhooks
from .errors import (
    APIError,
    APIStatusError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    DatasetFailedError,
    DatasetFileError,
    DatasetWaitTimeoutError,
    DeliveryDecodeError,
    EventLoopError,
    ForbiddenError,
    JobStateError,
    LogPagingError,
    NexusConnectionError,
    NexusError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseDecodeError,
    ServerError,
    StructureError,
    TransportError,
    UnauthorizedError,
    ValidationError,
    WaitTimeoutError,
    WebhookSignatureError,
)
from .models import (
    CreatedWebhook,
    Dataset,
    DatasetSource,
    DatasetSourceSpec,
    DatasetSpec,
    DatasetStatus,
    DatasetStatusOverview,
    DatasetUploadUrl,
    DeleteResponse,
    Delivery,
    DeliveryItem,
    DeploymentOptions,
    DeploymentTemplate,
    ExistingDeployment,
    Job,
    JobItemStatus,
    JobLogEntry,
    JobLogs,
    JobSpec,
    JobStatus,
    JobStatusOverview,
    LogLevel,
    NewEphemeralDeployment,
    PaginationResponse,
    Prediction,
    PredictionTag,
    ResultDelivery,
    UnknownDeployment,
    UnknownDestination,
    Webhook,
    WebhookDestination,
    WebhookRetries,
    WebhookSecret,
    WebhookSpec,
    WebhookTestResponse,
)
from .options import JobOptions, LogsFilter, Pagination
from .receiver import DeliveryReceiver, parse_delivery, verify_delivery

# Sorted; tests/sdk/test_exported_members.py pins this list. Error classes come
# from `errors` and are listed here with the rest.
__all__ = [
    "APIError",
    "APIStatusError",
    "AsCompleted",
    "AsyncClient",
    "Backoff",
    "BadRequestError",
    "Batch",
    "ClientClosedError",
    "ConflictError",
    "CreatedWebhook",
    "Dataset",
    "DatasetFailedError",
    "DatasetFileError",
    "DatasetSource",
    "DatasetSourceSpec",
    "DatasetSpec",
    "DatasetStatus",
    "DatasetStatusOverview",
    "DatasetUploadUrl",
    "DatasetWaitTimeoutError",
    "Datasets",
    "DeleteResponse",
    "Delivery",
    "DeliveryDecodeError",
    "DeliveryItem",
    "DeliveryReceiver",
    "DeploymentOptions",
    "DeploymentTemplate",
    "Diagnostics",
    "EventLoopError",
    "ExistingDeployment",
    "ForbiddenError",
    "HTTPStats",
    "Job",
    "JobItemStatus",
    "JobLogEntry",
    "JobLogs",
    "JobOptions",
    "JobProgress",
    "JobSpec",
    "JobStateError",
    "JobStatus",
    "JobStatusOverview",
    "Jobs",
    "LogCursor",
    "LogLevel",
    "LogPagingError",
    "LogStream",
    "LogsFilter",
    "NewEphemeralDeployment",
    "NexusConnectionError",
    "NexusError",
    "NotFoundError",
    "Pagination",
    "PaginationResponse",
    "PayloadTooLargeError",
    "PollerDiagnostics",
    "Prediction",
    "PredictionTag",
    "Project",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ResultDelivery",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "StructureError",
    "TransportError",
    "TransportStats",
    "UnauthorizedError",
    "UnknownDeployment",
    "UnknownDestination",
    "ValidationError",
    "WaitTimeoutError",
    "Wakeups",
    "Webhook",
    "WebhookDestination",
    "WebhookRetries",
    "WebhookSecret",
    "WebhookSignatureError",
    "WebhookSpec",
    "WebhookTestResponse",
    "Webhooks",
    "__version__",
    "parse_delivery",
    "structure",
    "unstructure",
    "verify_delivery",
]

# Tracebacks and reprs show the public path, as httpx does: every exported name
# presents itself as `nexus_async.X`. String annotations are resolved first, in
# each class's own module (later lookups would use `nexus_async`'s namespace,
# which lacks helper aliases such as `models.Deployment`).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and attrs.has(_obj):
        attrs.resolve_types(_obj)
    if getattr(_obj, "__module__", "").startswith("nexus_async"):
        _obj.__module__ = "nexus_async"
del _name, _obj
