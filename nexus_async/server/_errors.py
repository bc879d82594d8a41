"""The server's domain errors: what went wrong, in the terms of the batch API.

The state layer, the request readers and the handlers raise these; none of them knows
an HTTP status. The app maps each type to its status in one table (``_app.STATUS``), so
a message can be reworded freely without changing what a client sees:

    DomainError (ValueError)
    ├── Invalid          a malformed or out-of-range field, query parameter or cursor
    ├── Unauthenticated  no key given
    ├── Forbidden        a key that does not open this project, or an expired upload URL
    ├── NotFound         an unknown dataset, webhook, job, deployment, upload or file
    ├── Conflict         the resource exists or is in a state that forbids the call
    ├── TooLarge         a body or a declared file above the server's limits
    ├── TimedOut         a request body that did not arrive in time
    └── Unavailable      the job runner is not running

They are ``ValueError`` subclasses so that the Python admin methods of ``NexusCore``
(``seed_dataset``, ``add_project``, ...) raise what Python callers expect.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TimedOut",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
]


class DomainError(ValueError):
    """Base of the errors a client's request can cause; never raised itself.

    Args:
        message: what went wrong, shown to the client as the error's ``message``.
        code: a machine-readable ``code`` more specific than the type's default
            (e.g. ``runner_not_running``).
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Invalid(DomainError):
    """A field, query parameter, header or cursor is malformed or out of range."""


class Unauthenticated(DomainError):
    """The request carries no ``Secret-Key``."""


class Forbidden(DomainError):
    """The key does not open the project, or the upload URL has expired."""


class NotFound(DomainError):
    """The named resource does not exist (in this project)."""


class Conflict(DomainError):
    """The resource already exists, or its state forbids the call."""


class TooLarge(DomainError):
    """A body, or a declared dataset file, exceeds the server's limits."""


class TimedOut(DomainError):
    """The request body did not arrive within the server's read deadline."""


class Unavailable(DomainError):
    """A part of the server the call needs (the job runner) is not running."""
