"""nexus_async: an asynchronous SDK for Datature Nexus batch inference jobs.

Example:
    async with nexus_async.AsyncClient() as client:
        jobs = client.get_project("proj_...").batch.jobs
        job = await jobs.wait_until_done("batchjob_...")
"""

from ._backoff import Backoff, RetryPolicy
from ._client import AsyncClient, Batch, Project
from ._jobs import Jobs
from ._version import __version__
from .errors import (
    APIStatusError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
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
    TransportError,
    UnauthorizedError,
    ValidationError,
    WaitTimeoutError,
)
from .models import (
    DeleteResponse,
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
    ResultDelivery,
    UnknownDeployment,
    UnknownDestination,
    WebhookDestination,
)
from .options import JobOptions, LogsFilter, Pagination

__all__ = [
    "APIStatusError",
    "AsyncClient",
    "Backoff",
    "BadRequestError",
    "Batch",
    "ClientClosedError",
    "ConflictError",
    "DeleteResponse",
    "DeploymentOptions",
    "DeploymentTemplate",
    "ExistingDeployment",
    "ForbiddenError",
    "Job",
    "JobItemStatus",
    "JobLogEntry",
    "JobLogs",
    "JobOptions",
    "JobSpec",
    "JobStateError",
    "JobStatus",
    "JobStatusOverview",
    "Jobs",
    "LogLevel",
    "LogPagingError",
    "LogsFilter",
    "NewEphemeralDeployment",
    "NexusConnectionError",
    "NexusError",
    "NotFoundError",
    "Pagination",
    "PaginationResponse",
    "PayloadTooLargeError",
    "Project",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ResultDelivery",
    "RetryPolicy",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
    "UnknownDeployment",
    "UnknownDestination",
    "ValidationError",
    "WaitTimeoutError",
    "WebhookDestination",
    "__version__",
]

# Tracebacks and reprs show the public path, as httpx does.
for _name in ("AsyncClient", "Batch", "Project", "Jobs", "Backoff", "RetryPolicy"):
    globals()[_name].__module__ = "nexus_async"
del _name
