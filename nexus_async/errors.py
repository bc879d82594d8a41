"""Every exception the SDK raises, in one place.

The hierarchy::

    NexusError
    ├── ValidationError (also ValueError)     bad input, caught before any request is sent
    │   └── DatasetFileError                   a dataset file or item that is not valid NDJSON
    ├── ClientClosedError (also RuntimeError) the client was used after `aclose()`
    ├── EventLoopError (also RuntimeError)    the client was used from another event loop or thread
    ├── APIError                              one HTTP exchange failed (the fields below)
    │   ├── TransportError                     no usable HTTP response
    │   │   ├── NexusConnectionError            could not connect, or the connection broke
    │   │   └── RequestTimeoutError (also TimeoutError)
    │   ├── APIStatusError                     the API answered with a non-2xx status
    │   │   ├── BadRequestError                 400
    │   │   ├── UnauthorizedError               401
    │   │   ├── ForbiddenError                  403
    │   │   ├── NotFoundError                   404
    │   │   ├── ConflictError                   409
    │   │   ├── PayloadTooLargeError            413
    │   │   ├── RateLimitedError                429
    │   │   └── ServerError                     5xx
    │   └── ResponseDecodeError                a 2xx body that is not the expected JSON
    ├── StructureError (also ValueError)      `structure()`: JSON that does not fit the model
    ├── LogPagingError                        over a page of log entries share one millisecond
    ├── JobStateError                         a waited-on job ended in the state to raise on
    ├── WaitTimeoutError (also TimeoutError)  a wait ran out of time
    │   └── DatasetWaitTimeoutError            ... waiting on a dataset
    ├── DatasetFailedError                    a waited-on dataset's upload or processing failed
    ├── WebhookSignatureError (also ValueError)  a delivery's signature or timestamp is wrong
    └── DeliveryDecodeError (also ValueError)    a genuine delivery's body is not a `Delivery`

Errors that concern one HTTP exchange (`APIError`) carry `method`, `url` (never the
secret key, which travels only in a header), `status` (or None), the server's
`message` and `code`, the `response` when there was one (its request's secret-key
header redacted), how many `attempts` were made, and the server's `request_id` (its
`X-Request-Id` header) when it answered: quote it when reporting a problem. An error
that ends a log stream carries `cursor`, where a new stream can resume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from .models import Dataset, Job

__all__ = [
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "DatasetFailedError",
    "DatasetFileError",
    "DatasetWaitTimeoutError",
    "DeliveryDecodeError",
    "EventLoopError",
    "ForbiddenError",
    "JobStateError",
    "LogPagingError",
    "NexusConnectionError",
    "NexusError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ServerError",
    "StructureError",
    "TransportError",
    "UnauthorizedError",
    "ValidationError",
    "WaitTimeoutError",
    "WebhookSignatureError",
]


class NexusError(Exception):
    """Base class of every exception raised by nexus_async."""

    #: Set when the error ended a log stream (`get_all_logs`, `follow_logs`): the
    #: `LogCursor` after its last entry yielded, to pass as `resume_from`. Typed
    #: loosely so that the error tree imports nothing of the SDK (no import circle).
    cursor: Any = None


class ValidationError(NexusError, ValueError):
    """Raised when an argument is invalid; nothing has been sent."""


class ClientClosedError(NexusError, RuntimeError):
    """Raised when a closed `AsyncClient` is used again."""


class EventLoopError(NexusError, RuntimeError):
    """Raised when a client is used on another event loop (or thread) than the one it first ran on.

    An `AsyncClient` and its connections belong to one event loop: create one client
    per loop, inside the code that runs on it.
    """


class APIError(NexusError):
    """Base of the errors raised when one HTTP exchange failed; catch it for all of them."""

    #: Whether an earlier attempt of the same call may have been carried out by the
    #: server (it got no answer, or a 500/502/504): then a retried delete's 404 is
    #: the deletion itself.
    earlier_attempt_may_have_taken_effect: bool = False
    #: Whether any attempt of the call, this last one included, may have been carried
    #: out: then a create's outcome is unknown rather than failed.
    may_have_taken_effect: bool = False

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None = None,
        code: str | None = None,
        response: httpx.Response | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.status = status
        self.code = code
        self.response = response
        self.attempts = attempts

    @property
    def request_id(self) -> str | None:
        """The server's ID of the request that failed (`X-Request-Id`); None without an answer."""
        if self.response is None:
            return None
        request_id: str | None = self.response.headers.get("X-Request-Id")
        return request_id

    def __str__(self) -> str:
        where = f"{self.method} {self.url}"
        status = f" -> {self.status}" if self.status is not None else ""
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{self.message} [{where}{status}]{tries}"


class TransportError(APIError):
    """Raised when no usable HTTP response arrived (after any retries)."""


class NexusConnectionError(TransportError):
    """Raised when the connection could not be made, or broke mid-exchange."""


class RequestTimeoutError(TransportError, TimeoutError):
    """Raised when connecting, sending or reading took longer than the client's timeout."""


class APIStatusError(APIError):
    """Raised when the API answered with a non-2xx status (after any retries)."""


class BadRequestError(APIStatusError):
    """Raised on 400: the API rejected the request's content."""


class UnauthorizedError(APIStatusError):
    """Raised on 401: the secret key is missing or unknown."""


class ForbiddenError(APIStatusError):
    """Raised on 403: the secret key does not belong to this project."""


class NotFoundError(APIStatusError):
    """Raised on 404: the resource (or something it names) does not exist."""


class ConflictError(APIStatusError):
    """Raised on 409: the resource is not in a state that allows the request."""


class PayloadTooLargeError(APIStatusError):
    """Raised on 413: the request body is larger than the API accepts."""


class RateLimitedError(APIStatusError):
    """Raised on 429 once retries are spent; `retry_after` is the server's hint in seconds."""

    retry_after: float | None = None


class ServerError(APIStatusError):
    """Raised on a 5xx status once retries are spent."""


class ResponseDecodeError(APIError):
    """Raised when a 2xx body is not JSON or does not have the expected shape."""


class StructureError(NexusError, ValueError):
    """Raised by `structure()` when JSON does not fit the model; the message lists the paths."""


class LogPagingError(NexusError):
    """Raised when a full page (or more) of log entries shares one millisecond.

    Paging by time cannot get past such a group without losing entries, so the
    iterator stops loudly instead of looping or skipping. Narrow the query
    (`min_level`, `before_time`) to get past it.
    """

    def __init__(self, message: str, *, job_id: str, create_time: int) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.create_time = create_time


class JobStateError(NexusError):
    """Raised when a waited-on job ended in the state named by `raise_exception_if`.

    `job` is that job's final snapshot. From `wait_all(..., fail_fast=False)`,
    `jobs` holds every job that ended so (`job` is the first of them) and
    `finished` every final snapshot.
    """

    def __init__(
        self,
        message: str,
        *,
        job: Job,
        jobs: list[Job] | None = None,
        finished: list[Job] | None = None,
    ) -> None:
        super().__init__(message)
        self.job = job
        self.jobs = jobs if jobs is not None else [job]
        self.finished = finished if finished is not None else []


class WaitTimeoutError(NexusError, TimeoutError):
    """Raised by `wait_until_done` when the job is still running at the deadline.

    `job` is the last snapshot seen (None if no poll succeeded); when waiting on
    many jobs, `pending` holds the last snapshots of those still running.
    """

    def __init__(self, message: str, *, job: Job | None, pending: list[Job] | None = None) -> None:
        super().__init__(message)
        self.job = job
        self.pending = pending if pending is not None else []


# ------------------------------------------------------ datasets, webhooks, deliveries


class DatasetFileError(ValidationError):
    """Raised when a dataset file or item is not valid NDJSON for a dataset; nothing was sent.

    `path` is the file (None for `create_from_items`), `line` the 1-based line
    (or, for `create_from_items`, the 0-based item index in `item`), None when
    the problem is the file as a whole.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        item: int | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.item = item


class DatasetWaitTimeoutError(WaitTimeoutError):
    """Raised by `datasets.wait_until_done` when the dataset is not ready at the deadline.

    `dataset` is the last snapshot seen (None if no poll succeeded); `job` is None.
    """

    def __init__(self, message: str, *, dataset: Dataset | None) -> None:
        super().__init__(message, job=None)
        self.dataset = dataset


class DatasetFailedError(NexusError):
    """Raised by `datasets.wait_until_done` when the dataset ended FailedUpload or FailedProcessing.

    `dataset` is its final snapshot; `dataset.status.message` says why.
    """

    def __init__(self, message: str, *, dataset: Dataset) -> None:
        super().__init__(message)
        self.dataset = dataset


class WebhookSignatureError(NexusError, ValueError):
    """Raised when a delivery's signature headers are missing, stale, or match no secret."""


class DeliveryDecodeError(NexusError, ValueError):
    """Raised when a delivery verified but its body is not the expected JSON."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The most specific class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)
