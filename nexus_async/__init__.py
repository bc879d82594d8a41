"""nexus_async: an asynchronous SDK for Datature Nexus batch inference jobs.

Example:
    async with nexus_async.AsyncClient() as client:
        jobs = client.get_project("proj_...").batch.jobs
        job = await jobs.wait_until_done("batchjob_...")
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
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

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from ._backoff import Backoff, RetryEvent, RetryPolicy
    from ._client import AsyncClient, Batch, Project
    from ._convert import structure, unstructure
    from ._datasets import Datasets
    from ._http import HTTPStats
    from ._jobs import Jobs
    from ._logs import LogCursor, LogStream
    from ._runtime import Diagnostics, PollerDiagnostics
    from ._transport import TransportStats
    from ._waiting import AsCompleted, JobProgress, Wakeups
    from ._webhooks import Webhooks
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

# The modules behind every other name are imported when the name is first looked
# up (PEP 562), so that `import nexus_async` costs next to nothing: httpx, anyio,
# attrs and the models are loaded by `from nexus_async import AsyncClient`, and
# datasets, webhooks, the receiver and the converter only when used. The errors
# import nothing and are loaded here, so every traceback shows them as below.
_LAZY: dict[str, str] = {
    "AsCompleted": "._waiting",
    "AsyncClient": "._client",
    "Backoff": "._backoff",
    "Batch": "._client",
    "CreatedWebhook": ".models",
    "Dataset": ".models",
    "DatasetSource": ".models",
    "DatasetSourceSpec": ".models",
    "DatasetSpec": ".models",
    "DatasetStatus": ".models",
    "DatasetStatusOverview": ".models",
    "DatasetUploadUrl": ".models",
    "Datasets": "._datasets",
    "DeleteResponse": ".models",
    "Delivery": ".models",
    "DeliveryItem": ".models",
    "DeliveryReceiver": ".receiver",
    "DeploymentOptions": ".models",
    "DeploymentTemplate": ".models",
    "Diagnostics": "._runtime",
    "ExistingDeployment": ".models",
    "HTTPStats": "._http",
    "Job": ".models",
    "JobItemStatus": ".models",
    "JobLogEntry": ".models",
    "JobLogs": ".models",
    "JobOptions": ".options",
    "JobProgress": "._waiting",
    "JobSpec": ".models",
    "JobStatus": ".models",
    "JobStatusOverview": ".models",
    "Jobs": "._jobs",
    "LogCursor": "._logs",
    "LogLevel": ".models",
    "LogStream": "._logs",
    "LogsFilter": ".options",
    "NewEphemeralDeployment": ".models",
    "Pagination": ".options",
    "PaginationResponse": ".models",
    "PollerDiagnostics": "._runtime",
    "Prediction": ".models",
    "PredictionTag": ".models",
    "Project": "._client",
    "ResultDelivery": ".models",
    "RetryEvent": "._backoff",
    "RetryPolicy": "._backoff",
    "TransportStats": "._transport",
    "UnknownDeployment": ".models",
    "UnknownDestination": ".models",
    "Wakeups": "._waiting",
    "Webhook": ".models",
    "WebhookDestination": ".models",
    "WebhookRetries": ".models",
    "WebhookSecret": ".models",
    "WebhookSpec": ".models",
    "WebhookTestResponse": ".models",
    "Webhooks": "._webhooks",
    "parse_delivery": ".receiver",
    "structure": "._convert",
    "unstructure": "._convert",
    "verify_delivery": ".receiver",
}


def _present(namespace: dict[str, Any]) -> None:
    """Show exported names as `nexus_async.X` in tracebacks and reprs, as httpx does.

    String annotations are resolved first, in each class's own module (later
    lookups would use `nexus_async`'s namespace, which lacks helper aliases such as
    `models.Deployment`). A lazy name is presented when first looked up here, along
    with every other name of its module.
    """
    import attrs

    for name, obj in namespace.items():
        if isinstance(obj, type) and attrs.has(obj):
            attrs.resolve_types(obj)
        if getattr(obj, "__module__", "").startswith("nexus_async"):
            obj.__module__ = "nexus_async"
        globals()[name] = obj  # found directly from now on, without `__getattr__`


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    loaded = importlib.import_module(module, __name__)
    _present({n: getattr(loaded, n) for n, m in _LAZY.items() if m == module})
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


for _name in __all__:
    if _name not in _LAZY and _name != "__version__":
        globals()[_name].__module__ = "nexus_async"  # the errors
del _name
