"""The server's in-memory state: projects and their datasets, webhooks, jobs and logs.

Nothing here does I/O or awaits, so every change below happens between two checkpoints of
the event loop: a job's counters, status and log move together, and a reader never sees
a half-made transition (which is how the spec's counter invariants hold "at every
instant").

Lists are kept sorted by ``(createDate, id)`` and paged with opaque cursors that name a
boundary key rather than an offset, so a cursor stays valid while items are created or
deleted (see ``Collection``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import urllib.parse
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..signing import generate_secret
from ._clock import new_id, now_ms
from ._errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from ._logstore import LogClock, LogStore
from ._parse import has_surrogate, loads

__all__ = [
    "COUNTERS",
    "STAGES",
    "Collection",
    "Dataset",
    "Job",
    "Listed",
    "Project",
    "Stage",
    "Store",
    "Webhook",
    "check_endpoint",
    "check_item_url",
    "check_project_id",
    "check_secret_key",
    "parse_items",
]

JSON = dict[str, Any]

COUNTERS = (
    "Gathered",
    "FailedGather",
    "Preprocessed",
    "FailedProcess",
    "Predicted",
    "FailedPredict",
    "Delivered",
    "FailedDeliver",
)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its counters and the log kind of a success."""

    name: str
    ok: str
    failed: str
    kind: str


STAGES = {
    stage.name: stage
    for stage in (
        Stage("gather", "Gathered", "FailedGather", "ItemGathered"),
        Stage("preprocess", "Preprocessed", "FailedProcess", "ItemPreprocessed"),
        Stage("predict", "Predicted", "FailedPredict", "ItemPredicted"),
        Stage("deliver", "Delivered", "FailedDeliver", "ItemDelivered"),
    )
}

STOP_REASON = "BatchJob not completed before defined stop time"
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_BACKOFF_MS = 15000
DAY_MS = 24 * 60 * 60 * 1000
UPLOAD_URL_TTL_MS = 60 * 60 * 1000
DATASET_TTL_MS = 7 * DAY_MS
PROJECT_ID = re.compile(r"proj_[A-Za-z0-9_-]{1,128}")


# ---------------------------------------------------------------------------- paging


class _HasKey(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def create_date(self) -> int: ...


Listed = TypeVar("Listed", bound=_HasKey)
"""Anything a ``Collection`` holds: it has an ``id`` and a ``create_date``."""
Key = tuple[int, str]


def _encode_cursor(kind: str, direction: str, key: Key) -> str:
    raw = json.dumps([kind, direction, key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> tuple[str, Key]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        got_kind, direction, time, ident = value
        valid = (
            got_kind == kind
            and direction in ("next", "prev")
            and isinstance(time, int)
            and isinstance(ident, str)
        )
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error):
        valid = False
    if not valid:
        raise Invalid(f"query parameter `page` is not a valid {kind} page cursor")
    return direction, (time, ident)


class Collection(Generic[Listed]):
    """Resources of one kind in one project, listed newest first.

    A cursor is ``base64url(json([kind, direction, createDate, id]))``: "the items strictly
    older (``next``) or newer (``prev``) than this key". Because it names a key, not a
    position, deleting or adding items never shifts later pages: nothing is skipped or
    repeated except the items that really changed.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Listed] = {}
        self._keys: list[Key] = []  # ascending

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[Listed]:
        """Every item, in no particular order (a copy)."""
        return list(self._items.values())

    def add(self, item: Listed) -> None:
        self._items[item.id] = item
        insort(self._keys, (item.create_date, item.id))

    def get(self, ident: str) -> Listed | None:
        return self._items.get(ident)

    def remove(self, ident: str) -> Listed | None:
        item = self._items.pop(ident, None)
        if item is not None:
            index = bisect_left(self._keys, (item.create_date, item.id))
            del self._keys[index]
        return item

    def page(self, limit: int, cursor: str | None) -> tuple[list[Listed], str | None, str | None]:
        """Return ``(items newest first, nextPage, prevPage)``."""
        keys = self._keys
        if cursor is None:
            lo, hi = max(0, len(keys) - limit), len(keys)
            boundary: Key | None = None
        else:
            direction, boundary = _decode_cursor(self.kind, cursor)
            if direction == "next":
                hi = bisect_left(keys, boundary)
                lo = max(0, hi - limit)
            else:
                lo = bisect_right(keys, boundary)
                hi = min(len(keys), lo + limit)
        chosen = keys[lo:hi]
        items = [self._items[ident] for _, ident in reversed(chosen)]
        oldest = chosen[0] if chosen else boundary
        newest = chosen[-1] if chosen else boundary
        next_page = (
            _encode_cursor(self.kind, "next", oldest)
            if oldest is not None and bisect_left(keys, oldest) > 0
            else None
        )
        prev_page = (
            _encode_cursor(self.kind, "prev", newest)
            if newest is not None and bisect_right(keys, newest) < len(keys)
            else None
        )
        return items, next_page, prev_page


# ---------------------------------------------------------------------------- datasets


def _http_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable http(s) URL, or None."""
    if any(ch == " " or not ch.isprintable() for ch in url):
        return f"must not contain whitespace or control characters (got {url[:80]!a})"
    try:
        parts = urllib.parse.urlsplit(url)
        valid = (
            parts.scheme.lower() in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)
        )
    except ValueError:  # a bad IPv6 literal, or a port outside 0..65535
        valid = False
    if valid:
        return None
    return f"must be an http(s) URL with a host and a port within 1..65535 (got {url[:80]!a})"


def check_endpoint(url: str) -> str | None:
    """Why ``url`` cannot be a webhook endpoint, or None when it can."""
    return _http_url_problem(url)


def check_item_url(url: object) -> str | None:
    """Why ``url`` cannot be an item URL, or None when it can."""
    if not isinstance(url, str) or not url:
        return "`url` must be a non-empty string"
    lowered = url[:8].lower()
    if lowered.startswith(("http://", "https://")):
        problem = _http_url_problem(url)
        return None if problem is None else f"`url` {problem}"
    if lowered.startswith("data:"):
        if has_surrogate(url):
            return "`url` contains a lone surrogate escape"
        return None if "," in url else "`url` is a data: URL without a comma"
    return f"`url` must be an http(s) or data: URL (got {url[:40]!a})"


def parse_items(raw: bytes) -> list[str]:
    """Read an NDJSON dataset file into item URLs.

    Raises:
        Invalid: naming the 1-based line that is not ``{"kind": "Image", "url": ...}``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"the file is not UTF-8 (byte {exc.start})") from exc
    urls: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = loads(line, "the item")
        except Invalid as exc:
            raise Invalid(f"line {number}: {exc.message}") from exc
        if not isinstance(item, dict):
            raise Invalid(f"line {number}: expected a JSON object")
        if item.get("kind") != "Image":
            raise Invalid(f'line {number}: `kind` must be "Image" (got {item.get("kind")!r})')
        problem = check_item_url(item.get("url"))
        if problem is not None:
            raise Invalid(f"line {number}: {problem}")
        urls.append(item["url"])
    return urls


@dataclass(eq=False, kw_only=True)
class Dataset:
    """A dataset: declared file, upload state, and (once processed) the item URLs."""

    project_id: str
    name: str
    size_bytes: int
    crc32c: str
    id: str = field(default_factory=lambda: new_id("dataset"))
    create_date: int = field(default_factory=now_ms)
    upload_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    overview: str = "Waiting"
    message: str = "Waiting for upload"
    items: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.update_date = self.create_date
        self.update_time = self.create_date
        self.expiry_time = self.create_date + DATASET_TTL_MS
        self.upload_expires = self.create_date + UPLOAD_URL_TTL_MS

    @property
    def upload_headers(self) -> dict[str, str]:
        """Headers the uploader must send, as a GCS signed URL would require."""
        return {
            "Content-Type": "application/x-ndjson",
            "x-goog-hash": f"crc32c={self.crc32c}",
        }

    def set_status(self, overview: str, message: str) -> None:
        self.overview = overview
        self.message = message
        self.update_time = self.update_date = now_ms()

    def to_json(self, base_url: str) -> JSON:
        return {
            "id": self.id,
            "object": "dataset",
            "name": self.name,
            "projectId": self.project_id,
            "expiryTime": self.expiry_time,
            "createDate": self.create_date,
            "updateDate": self.update_date,
            "status": {
                "overview": self.overview,
                "message": self.message,
                "updateTime": self.update_time,
                "itemCount": len(self.items),
                "source": {
                    "kind": "UploadedNewlineDelimitedJsonFile",
                    "sizeBytes": self.size_bytes,
                    "crc32c": self.crc32c,
                    "uploadUrl": {
                        "method": "PUT",
                        "url": f"{base_url}/_nexus/uploads/{self.upload_token}",
                        "headers": self.upload_headers,
                        "expiresAtTime": self.upload_expires,
                    },
                },
            },
        }


# ---------------------------------------------------------------------------- webhooks


@dataclass(eq=False, kw_only=True)
class Webhook:
    """A delivery destination; ``secret`` is never rendered."""

    project_id: str
    name: str
    endpoint: str
    secret: str = field(default_factory=generate_secret, repr=False)
    max_retries: int = DEFAULT_MAX_RETRIES
    max_backoff_ms: int = DEFAULT_MAX_BACKOFF_MS
    id: str = field(default_factory=lambda: new_id("webhook"))
    create_date: int = field(default_factory=now_ms)

    def __post_init__(self) -> None:
        self.update_date = self.create_date

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "object": "webhook",
            "projectId": self.project_id,
            "name": self.name,
            "endpoint": self.endpoint,
            "retries": {"maxRetries": self.max_retries, "maxBackoffMs": self.max_backoff_ms},
            "createDate": self.create_date,
            "updateDate": self.update_date,
        }


# ---------------------------------------------------------------------------- jobs


@dataclass(eq=False)
class Job:
    """A batch job and its lifecycle.

    All transitions are methods here, each guarded so that nothing changes once the job is
    ``Reached`` or ``Failed``: a stage that completes in a worker thread just after a cancel
    is dropped instead of bumping a counter of a terminal job.
    """

    id: str
    project_id: str
    name: str
    dataset_id: str
    deployment: JSON
    webhook_ids: list[str]
    start_at: int
    stop_at: int
    items: Sequence[str]
    create_date: int
    logs: LogStore
    overview: str = "Waiting"
    message: str = "Waiting"
    reason: str | None = None
    cancelled_at: int | None = None
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def __post_init__(self) -> None:
        self.update_date = self.create_date
        self.status_date = self.create_date

    @property
    def terminal(self) -> bool:
        return self.overview in ("Reached", "Failed")

    def _touch(self) -> None:
        self.update_date = self.status_date = now_ms()

    def begin(self) -> None:
        """The start time has come and a job slot is free: items start to flow."""
        if self.terminal:
            return
        self.message = "Running"
        self._touch()
        self.logs.add("JobStarted", "Info", status="Running")

    def record(self, stage: str, item: str, time_ms: float, reason: str | None = None) -> None:
        """Count one item's outcome at ``stage`` (failed when ``reason`` is given).

        Does nothing once the job is terminal.
        """
        if self.terminal:
            return
        info = STAGES[stage]
        if reason is None:
            self.counters[info.ok] += 1
            self.logs.add(info.kind, "Info", item=item, status=info.ok, time_ms=time_ms)
        else:
            self.counters[info.failed] += 1
            self.logs.add(
                "ItemFailed", "Error", item=item, status=info.failed, time_ms=time_ms, reason=reason
            )
        self._touch()

    def finish(self) -> None:
        """Every item has ended: ``Reached`` / ``Finished``."""
        if self.terminal:
            return
        self.overview, self.message, self.reason = "Reached", "Finished", None
        self._touch()
        self.logs.add("JobFinished", "Info", status="Reached")

    def expire(self) -> None:
        """The stop time passed before every item ended."""
        if self.terminal:
            return
        self.overview, self.message, self.reason = "Failed", "Stop time reached", STOP_REASON
        self._touch()
        self.logs.add("JobFinished", "Error", status="Failed", reason=STOP_REASON)

    def cancel(self, at: int) -> None:
        """Stop the job now (the cancel PATCH, or a delete); nothing if already terminal."""
        if self.terminal:
            return
        reason = f"{STOP_REASON} due to requested cancellation at {at}"
        self.overview, self.message, self.reason = "Failed", "Batch job cancelled", reason
        self.cancelled_at = at
        self.stop_at = at
        self._touch()
        self.logs.add("JobCancelled", "Warning", status="Failed", reason=reason)

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "object": "batch_job",
            "name": self.name,
            "projectId": self.project_id,
            "spec": {
                "datasetId": self.dataset_id,
                "deployment": self.deployment,
                "resultDelivery": {
                    "destinations": [
                        {"kind": "Webhook", "webhookId": ident} for ident in self.webhook_ids
                    ]
                },
                "startAtTime": self.start_at,
                "stopAtTime": self.stop_at,
            },
            "status": {
                "overview": self.overview,
                "message": self.message,
                "updateDate": self.status_date,
                "reason": self.reason,
                "cancelledAt": self.cancelled_at,
                "items": dict(self.counters),
            },
            "createDate": self.create_date,
            "updateDate": self.update_date,
        }

    def logs_body(self, entries: bytes) -> bytes:
        """The logs call's answer around ``entries``, a JSON array already encoded."""
        head = {
            "id": f"batchjoblog_{self.id.removeprefix('batchjob_')}",
            "object": "batch_job_log",
            "projectId": self.project_id,
        }
        return (
            json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"entries":' + entries + b"}"
        )


# ---------------------------------------------------------------------------- projects


@dataclass(eq=False)
class Project:
    """One isolated project: its key, deployments and resources."""

    id: str
    secret_key: str = field(repr=False)
    deployment_id: str = field(default_factory=lambda: new_id("deploy"))
    deployments: dict[str, JSON] = field(default_factory=dict)
    datasets: Collection[Dataset] = field(default_factory=lambda: Collection("datasets"))
    webhooks: Collection[Webhook] = field(default_factory=lambda: Collection("webhooks"))
    jobs: Collection[Job] = field(default_factory=lambda: Collection("jobs"))

    def __post_init__(self) -> None:
        self.deployments[self.deployment_id] = {"kind": "ExistingDeployment"}

    def key_matches(self, key: str) -> bool:
        return hmac.compare_digest(self.secret_key.encode(), key.encode())

    def dataset(self, ident: str) -> Dataset:
        found = self.datasets.get(ident)
        if found is None:
            raise NotFound(f"dataset {ident!r} not found in project {self.id}")
        return found

    def webhook(self, ident: str) -> Webhook:
        found = self.webhooks.get(ident)
        if found is None:
            raise NotFound(f"webhook {ident!r} not found in project {self.id}")
        return found

    def job(self, ident: str) -> Job:
        found = self.jobs.get(ident)
        if found is None:
            raise NotFound(f"batch job {ident!r} not found in project {self.id}")
        return found


def check_project_id(ident: str) -> str | None:
    """Why ``ident`` cannot be a project id, or None when it can."""
    if PROJECT_ID.fullmatch(ident):
        return None
    return "must look like 'proj_<letters, digits, _ or ->'"


def check_secret_key(key: str) -> str | None:
    """Why ``key`` cannot be a project's key, or None when it can."""
    if key and not any(ch.isspace() or not ch.isprintable() for ch in key):
        return None
    return "must be a non-empty printable string without spaces"


class Store:
    """Every project, plus the indexes that cross projects (uploads, job ids)."""

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.uploads: dict[str, Dataset] = {}
        self.jobs_by_id: dict[str, Job] = {}
        self.log_clock = LogClock()

    def add_project(self, project_id: str | None = None, secret_key: str | None = None) -> Project:
        """Create a project; ids are ``proj_<32 hex>`` and keys random when not given.

        Raises:
            Invalid: the id is malformed or the key empty or unprintable.
            Conflict: a project with this id exists.
        """
        ident = project_id if project_id is not None else f"proj_{uuid.uuid4().hex}"
        if (problem := check_project_id(ident)) is not None:
            raise Invalid(f"project_id {problem} (got {ident!r})")
        if ident in self.projects:
            raise Conflict(f"project {ident} already exists")
        key = secret_key if secret_key is not None else secrets.token_urlsafe(32)
        if (problem := check_secret_key(key)) is not None:
            raise Invalid(f"secret_key {problem}")
        project = Project(ident, key)
        self.projects[ident] = project
        return project

    def authenticate(self, project_id: str, key: str | None) -> Project:
        """The project behind ``project_id`` if ``key`` is its key.

        Raises:
            Unauthenticated: no key was given.
            Forbidden: the key is not this project's, or there is no such project (so that
                another project's ids are never confirmed).
        """
        if key is None or not key.strip():
            raise Unauthenticated("missing Secret-Key header")
        project = self.projects.get(project_id)
        if project is None or not project.key_matches(key):
            raise Forbidden(f"the Secret-Key does not grant access to project {project_id}")
        return project

    def new_logs(self) -> LogStore:
        return LogStore(self.log_clock)

    def add_job(self, project: Project, job: Job) -> None:
        project.jobs.add(job)
        self.jobs_by_id[job.id] = job

    def remove_job(self, project: Project, job: Job) -> None:
        project.jobs.remove(job.id)
        self.jobs_by_id.pop(job.id, None)

    def add_dataset(self, project: Project, dataset: Dataset) -> None:
        project.datasets.add(dataset)
        self.uploads[dataset.upload_token] = dataset

    def remove_dataset(self, project: Project, dataset: Dataset) -> None:
        project.datasets.remove(dataset.id)
        self.uploads.pop(dataset.upload_token, None)
