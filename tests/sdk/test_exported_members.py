"""The public surface: exactly these names, each presented as `nexus_async.X`.

Adding or removing a public name is a deliberate act: update this list with it.
Errors are listed here too (they live in `nexus_async.errors` and are re-exported).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import nexus_async
from nexus_async import errors

EXPORTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert nexus_async.__all__ == EXPORTED
    assert sorted(EXPORTED) == EXPORTED


def test_every_name_resolves() -> None:
    for name in EXPORTED:
        assert getattr(nexus_async, name) is not None, name


def test_every_exported_class_and_function_shows_the_package_as_its_module() -> None:
    for name in EXPORTED:
        obj = getattr(nexus_async, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        assert obj.__module__ == "nexus_async", f"{name}: {obj.__module__}"


def test_types_public_calls_hand_out_are_exported() -> None:
    handed_out = [
        nexus_async.JobProgress,  # on_progress's argument
        nexus_async.AsCompleted,  # jobs.as_completed()
        nexus_async.Diagnostics,  # client.diagnostics()
        nexus_async.PollerDiagnostics,
        nexus_async.LogCursor,
        nexus_async.LogStream,  # jobs.get_all_logs(), jobs.follow_logs()
    ]
    for cls in handed_out:
        assert cls.__name__ in nexus_async.__all__
        assert cls.__module__ == "nexus_async"


def test_every_error_class_is_exported() -> None:
    for name, obj in vars(errors).items():
        if inspect.isclass(obj) and issubclass(obj, errors.NexusError) and not name.startswith("_"):
            assert name in nexus_async.__all__, name


def test_lazy_names_are_what_type_checkers_are_told() -> None:
    """The `TYPE_CHECKING` imports name each lazy export from the module it is loaded from."""
    tree = ast.parse(Path(nexus_async.__file__).read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    told = {
        alias.name: "." * node.level + (node.module or "")
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert told == nexus_async._LAZY
    eager = {name for name in EXPORTED if name not in told}
    assert eager == {"__version__"} | {
        name for name, obj in vars(errors).items() if inspect.isclass(obj) and name in EXPORTED
    }
    for name, module in told.items():
        assert getattr(importlib.import_module(module, "nexus_async"), name) is getattr(
            nexus_async, name
        ), name
