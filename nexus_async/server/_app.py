"""HTTP routes of the local Nexus: request parsing -> state and runner -> JSON.

Every error leaves through one set of exception handlers with the spec's shape
``{"message", "code"}``: a domain error from the state or the handlers (its status chosen
by its type, in ``STATUS``), Starlette's routing (404 unknown route, 405 wrong method), or
a bug (500).
"""

from __future__ import annotations

import base64
import binascii
import logging
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._crc32c import Crc32c
from ..signing import generate_secret
from ._bodies import BodyGuard
from ._clock import new_id, now_ms
from ._core import NexusCore, check_secret
from ._errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    TimedOut,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from ._faults import ControlMiddleware
from ._logstore import LEVELS
from ._openapi import openapi_document
from ._parse import (
    opt_int,
    opt_number,
    opt_object,
    opt_str,
    parse_json_object,
    query_int,
    req_int,
    req_object,
    req_str,
)
from ._responses import error_json
from ._settings import ServerSettings
from ._state import (
    DAY_MS,
    DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_MAX_RETRIES,
    Collection,
    Dataset,
    Job,
    Listed,
    Project,
    Webhook,
    check_endpoint,
    parse_items,
)

__all__ = ["build_app", "create_app"]

logger = logging.getLogger("nexus_async.server")

JSON = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]

PAGE_LIMIT = 1000
MAX_RETRIES = 20
MAX_BACKOFF_MS = 3_600_000
_INLINE_READ = 256 * 1024
_LEVEL_NAMES = {level.lower(): level for level in LEVELS}


def _ok(content: Any) -> JSONResponse:
    return JSONResponse(content)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _check_endpoint(url: str, path: str) -> str:
    problem = check_endpoint(url)
    if problem is not None:
        raise Invalid(f"`{path}` {problem}")
    return url


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ``TooLarge`` once it passes ``limit`` bytes.

    What is left unread is drained by ``BodyGuard`` before the answer goes out.
    """
    too_large = TooLarge(f"the request body is larger than {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


class _Api:
    """The route handlers, bound to one ``NexusCore``."""

    def __init__(self, core: NexusCore) -> None:
        self.core = core
        self.store = core.store

    # ------------------------------------------------------------------------ helpers

    async def _body(self, request: Request) -> JSON:
        return parse_json_object(await _read_body(request, self.core.settings.max_body_bytes))

    def _project(self, request: Request) -> Project:
        return self.store.authenticate(
            request.path_params["project_id"], request.headers.get("secret-key")
        )

    def _admin(self, request: Request) -> None:
        """Admin calls need the key of the project the server started with."""
        self.store.authenticate(self.core.project_id, request.headers.get("secret-key"))

    @staticmethod
    def _page(
        request: Request, collection: Collection[Listed], render: Callable[[Listed], JSON]
    ) -> Response:
        """One page of a list call: ``{"nextPage", "prevPage", "data"}``."""
        limit = query_int(request.query_params, "limit", minimum=1, maximum=PAGE_LIMIT)
        cursor = request.query_params.get("page") or None
        items, next_page, prev_page = collection.page(
            PAGE_LIMIT if limit is None else limit, cursor
        )
        return _ok(
            {"nextPage": next_page, "prevPage": prev_page, "data": [render(i) for i in items]}
        )

    def _require_runner(self) -> None:
        if not self.core.runner.running:
            raise Unavailable(
                "the local Nexus runner is not running: serve the app with its lifespan, "
                "enter `async with app.router.lifespan_context(app)`, or use LocalNexus",
                code="runner_not_running",
            )

    # ------------------------------------------------------------------------ datasets

    async def create_dataset(self, request: Request) -> Response:
        project = self._project(request)
        body = await self._body(request)
        name = req_str(body, "name")
        spec = req_object(body, "spec")
        source = req_object(spec, "source", "spec")
        kind = req_str(source, "kind", "spec.source")
        if kind != "UploadedNewlineDelimitedJsonFile":
            raise Invalid(
                f'`spec.source.kind` must be "UploadedNewlineDelimitedJsonFile" (got {kind!r})'
            )
        size = req_int(source, "sizeBytes", "spec.source", minimum=0)
        crc = req_str(source, "crc32c", "spec.source", max_len=16)
        try:
            valid_crc = len(base64.b64decode(crc, validate=True)) == 4
        except (binascii.Error, ValueError):
            valid_crc = False
        if not valid_crc:
            raise Invalid(
                f"`spec.source.crc32c` must be the base64 of a 4-byte CRC32C (got {crc!r})"
            )
        if size > self.core.settings.max_upload_bytes:
            raise TooLarge(
                f"`spec.source.sizeBytes` {size} exceeds the limit of"
                f" {self.core.settings.max_upload_bytes} bytes",
            )
        dataset = Dataset(project_id=project.id, name=name, size_bytes=size, crc32c=crc)
        self.store.add_dataset(project, dataset)
        return _ok(dataset.to_json(_base_url(request)))

    async def list_datasets(self, request: Request) -> Response:
        base = _base_url(request)
        return self._page(request, self._project(request).datasets, lambda d: d.to_json(base))

    async def get_dataset(self, request: Request) -> Response:
        project = self._project(request)
        dataset = project.dataset(request.path_params["dataset_id"])
        return _ok(dataset.to_json(_base_url(request)))

    async def delete_dataset(self, request: Request) -> Response:
        project = self._project(request)
        dataset = project.dataset(request.path_params["dataset_id"])
        self.store.remove_dataset(project, dataset)
        return _ok({"id": dataset.id, "deleted": True})

    async def upload(self, request: Request) -> Response:
        """``PUT /_nexus/uploads/{token}``: the dataset file, checked and processed."""
        dataset = self.store.uploads.get(request.path_params["token"])
        if dataset is None:
            raise NotFound("unknown upload URL (the dataset may have been deleted)")
        if now_ms() > dataset.upload_expires:
            raise Forbidden("the upload URL has expired")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        wanted_type = dataset.upload_headers["Content-Type"]
        if media_type != wanted_type:
            raise Invalid(
                f"header Content-Type must be {wanted_type!r} (got {media_type or None!r})"
            )
        goog_hash = {
            key.strip().lower(): value.strip()
            for key, _, value in (
                part.partition("=") for part in request.headers.get("x-goog-hash", "").split(",")
            )
        }
        if goog_hash.get("crc32c") != dataset.crc32c:
            raise Invalid(
                f"header x-goog-hash must carry crc32c={dataset.crc32c} (the declared crc32c)"
            )
        if dataset.overview in ("Uploading", "Processing"):
            raise Conflict(f"an upload of this dataset is in progress ({dataset.overview})")
        # A retry after a lost response re-sends the same file: check it, change nothing.
        repeat = dataset.overview in ("Uploaded", "FailedProcessing")
        if not repeat:
            dataset.set_status("Uploading", "Receiving the file")
        try:
            content = await self._receive_file(request, dataset)
        except DomainError as exc:
            if not repeat:
                dataset.set_status("FailedUpload", exc.message)
            raise
        finally:
            if dataset.overview == "Uploading":  # the client went away mid-body
                dataset.set_status("FailedUpload", "the upload was interrupted")
        if repeat:
            return Response(status_code=200)
        dataset.set_status("Processing", "Reading items")
        try:  # a big file takes a while to parse: keep the event loop free meanwhile
            dataset.items = await anyio.to_thread.run_sync(parse_items, content)
        except Invalid as exc:
            dataset.set_status("FailedProcessing", exc.message)
            logger.info("dataset %s failed processing: %s", dataset.id, exc)
        else:
            dataset.set_status("Uploaded", "Uploaded")
        finally:  # never left Processing, whatever happened (a bug, a cancelled request)
            if dataset.overview == "Processing":
                dataset.set_status("FailedProcessing", "the items could not be read")
        return Response(status_code=200)

    async def _receive_file(self, request: Request, dataset: Dataset) -> bytes:
        size = dataset.size_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) != size:
            raise Invalid(f"Content-Length {declared} differs from sizeBytes {size}")
        hasher = Crc32c()
        content = bytearray()
        async for chunk in request.stream():
            content += chunk
            if len(content) > size:
                raise Invalid(f"the file is larger than the declared sizeBytes {size}")
            hasher.update(chunk)
        if len(content) != size:
            raise Invalid(f"the file has {len(content)} bytes, not the declared {size}")
        if hasher.b64() != dataset.crc32c:
            raise Invalid(
                f"the file's crc32c {hasher.b64()} differs from the declared {dataset.crc32c}"
            )
        return bytes(content)

    # ------------------------------------------------------------------------ webhooks

    @staticmethod
    def _retries(spec: JSON, current: Webhook | None) -> tuple[int, int]:
        retries = opt_object(spec, "retries", "spec") or {}
        max_retries = opt_int(retries, "maxRetries", "spec.retries", minimum=0, maximum=MAX_RETRIES)
        max_backoff = opt_int(
            retries, "maxBackoffMs", "spec.retries", minimum=0, maximum=MAX_BACKOFF_MS
        )
        default_retries = current.max_retries if current else DEFAULT_MAX_RETRIES
        default_backoff = current.max_backoff_ms if current else DEFAULT_MAX_BACKOFF_MS
        return (
            default_retries if max_retries is None else max_retries,
            default_backoff if max_backoff is None else max_backoff,
        )

    @staticmethod
    def _secret(obj: JSON, prefix: str) -> str:
        value = req_str(obj, "contents", prefix, max_len=256)
        problem = check_secret(value)
        if problem is not None:
            where = f"{prefix}.contents" if prefix else "contents"
            raise Invalid(f"`{where}` {problem}")
        return value

    async def create_webhook(self, request: Request) -> Response:
        project = self._project(request)
        body = await self._body(request)
        name = req_str(body, "name")
        spec = req_object(body, "spec")
        endpoint = _check_endpoint(req_str(spec, "endpoint", "spec", max_len=2048), "spec.endpoint")
        secret_obj = opt_object(spec, "secret", "spec")
        secret = (
            self._secret(secret_obj, "spec.secret") if secret_obj is not None else generate_secret()
        )
        max_retries, max_backoff = self._retries(spec, None)
        webhook = Webhook(
            project_id=project.id,
            name=name,
            endpoint=endpoint,
            secret=secret,
            max_retries=max_retries,
            max_backoff_ms=max_backoff,
        )
        project.webhooks.add(webhook)
        created = webhook.to_json()
        if secret_obj is None:  # the only time a generated secret is shown: keep it
            created["secret"] = {"contents": secret}
        return _ok(created)

    async def list_webhooks(self, request: Request) -> Response:
        return self._page(request, self._project(request).webhooks, Webhook.to_json)

    async def get_webhook(self, request: Request) -> Response:
        project = self._project(request)
        return _ok(project.webhook(request.path_params["webhook_id"]).to_json())

    async def update_webhook(self, request: Request) -> Response:
        project = self._project(request)
        webhook = project.webhook(request.path_params["webhook_id"])
        body = await self._body(request)
        name = opt_str(body, "name")
        spec = req_object(body, "spec")
        for where, holder in (("secret", body), ("spec.secret", spec)):
            if "secret" in holder:  # never silently ignored: it would look rotated
                raise Invalid(
                    f"`{where}` cannot be changed by PATCH; rotate it with PUT"
                    f" /projects/{project.id}/batch/webhooks/{webhook.id}/secret"
                    ' and a body {"contents": ...}'
                )
        endpoint = opt_str(spec, "endpoint", "spec", max_len=2048)
        if endpoint is not None:
            _check_endpoint(endpoint, "spec.endpoint")
        max_retries, max_backoff = self._retries(spec, webhook)
        # Validate everything before changing anything.
        if name is not None:
            webhook.name = name
        if endpoint is not None:
            webhook.endpoint = endpoint
        webhook.max_retries, webhook.max_backoff_ms = max_retries, max_backoff
        webhook.update_date = now_ms()
        return _ok(webhook.to_json())

    async def update_webhook_secret(self, request: Request) -> Response:
        project = self._project(request)
        webhook = project.webhook(request.path_params["webhook_id"])
        body = await self._body(request)
        webhook.secret = self._secret(body, "")
        webhook.update_date = now_ms()
        return _ok(webhook.to_json())

    async def delete_webhook(self, request: Request) -> Response:
        project = self._project(request)
        webhook = project.webhook(request.path_params["webhook_id"])
        project.webhooks.remove(webhook.id)
        return _ok({"id": webhook.id, "deleted": True})

    async def test_webhook(self, request: Request) -> Response:
        project = self._project(request)
        webhook = project.webhook(request.path_params["webhook_id"])
        self._require_runner()
        return _ok(await self.core.runner.test_webhook(project, webhook))

    # ------------------------------------------------------------------------ jobs

    @staticmethod
    def _deployment(spec: JSON, project: Project) -> tuple[JSON, bool]:
        """The normalised deployment and whether it is a new ephemeral one."""
        deployment = req_object(spec, "deployment", "spec")
        kind = req_str(deployment, "kind", "spec.deployment")
        if kind == "ExistingDeployment":
            ident = req_str(deployment, "deploymentId", "spec.deployment")
            return {"kind": kind, "deploymentId": ident}, False
        if kind != "NewEphemeralDeployment":
            raise Invalid(
                '`spec.deployment.kind` must be "ExistingDeployment" or "NewEphemeralDeployment"'
                f" (got {kind!r})",
            )
        prefix = "spec.deployment.template"
        template = req_object(deployment, "template", "spec.deployment")
        artifact = req_str(template, "artifactId", prefix)
        if not artifact.startswith("artifact_"):
            raise Invalid(f"`{prefix}.artifactId` must start with 'artifact_' (got {artifact!r})")
        normalised: JSON = {"artifactId": artifact}
        for key in ("name", "region", "versionTag", "instanceId"):
            value = opt_str(template, key, prefix)
            if value is not None:
                normalised[key] = value
        normalised["replicas"] = opt_int(template, "replicas", prefix, minimum=1, maximum=64) or 1
        options = opt_object(template, "options", prefix)
        if options is not None:
            where = f"{prefix}.options"
            checked: JSON = {}
            strategy = opt_str(options, "evaluationStrategy", where)
            threshold = opt_number(options, "evaluationThreshold", where, minimum=0, maximum=1)
            group = options.get("evaluationGroup")
            if group is not None and not (
                isinstance(group, str)
                or (isinstance(group, list) and all(isinstance(g, str) for g in group))
            ):
                raise Invalid(f"`{where}.evaluationGroup` must be a string or a list of strings")
            if strategy is not None:
                checked["evaluationStrategy"] = strategy
            if threshold is not None:
                checked["evaluationThreshold"] = threshold
            if group is not None:
                checked["evaluationGroup"] = group
            normalised["options"] = checked
        return {"kind": kind, "template": normalised}, True

    @staticmethod
    def _destinations(spec: JSON) -> list[str]:
        delivery = req_object(spec, "resultDelivery", "spec")
        destinations = delivery.get("destinations")
        path = "spec.resultDelivery.destinations"
        if not isinstance(destinations, list) or not destinations:
            raise Invalid(f"`{path}` must be a non-empty array")
        ids: list[str] = []
        for index, item in enumerate(destinations):
            where = f"{path}[{index}]"
            if not isinstance(item, dict):
                raise Invalid(f"`{where}` must be an object")
            kind = req_str(item, "kind", where)
            if kind != "Webhook":
                raise Invalid(f'`{where}.kind` must be "Webhook" (got {kind!r})')
            ident = req_str(item, "webhookId", where)
            if ident in ids:
                raise Invalid(f"`{where}.webhookId` {ident!r} is listed twice")
            ids.append(ident)
        return ids

    async def create_job(self, request: Request) -> Response:
        project = self._project(request)
        body = await self._body(request)
        name = req_str(body, "name")
        spec = req_object(body, "spec")
        dataset_id = req_str(spec, "datasetId", "spec")
        deployment, ephemeral = self._deployment(spec, project)
        webhook_ids = self._destinations(spec)
        now = now_ms()
        start = opt_int(spec, "startAtTime", "spec", minimum=0)
        start = now if start is None else start
        stop = opt_int(spec, "stopAtTime", "spec", minimum=0)
        stop = start + 3 * DAY_MS if stop is None else stop
        if stop <= start:
            raise Invalid(f"`spec.stopAtTime` ({stop}) must be after `spec.startAtTime` ({start})")
        # The body is well-formed; now check what it refers to.
        dataset = project.dataset(dataset_id)
        if not ephemeral and deployment["deploymentId"] not in project.deployments:
            raise NotFound(
                f"deployment {deployment['deploymentId']!r} not found in project {project.id}"
            )
        for ident in webhook_ids:
            project.webhook(ident)
        if dataset.overview != "Uploaded":
            raise Conflict(
                f"dataset {dataset.id} is {dataset.overview}, not Uploaded: {dataset.message}"
            )
        self._require_runner()
        if ephemeral:
            deployment_id = new_id("deploy")
            project.deployments[deployment_id] = deployment
        job = Job(
            id=new_id("batchjob"),
            project_id=project.id,
            name=name,
            dataset_id=dataset.id,
            deployment=deployment,
            webhook_ids=webhook_ids,
            start_at=start,
            stop_at=stop,
            items=tuple(dataset.items),
            create_date=now,
            logs=self.store.new_logs(),
        )
        self.store.add_job(project, job)
        self.core.runner.submit(project, job)
        return _ok(job.to_json())

    async def list_jobs(self, request: Request) -> Response:
        return self._page(request, self._project(request).jobs, Job.to_json)

    async def get_job(self, request: Request) -> Response:
        project = self._project(request)
        return _ok(project.job(request.path_params["job_id"]).to_json())

    async def patch_job(self, request: Request) -> Response:
        """Cancel (``stopAtTime`` now or past) or move the stop time of a job."""
        project = self._project(request)
        job = project.job(request.path_params["job_id"])
        body = await self._body(request)
        spec = req_object(body, "spec")
        stop = req_int(spec, "stopAtTime", "spec", minimum=0)
        if job.terminal:
            return _ok(job.to_json())  # terminal states never change
        now = now_ms()
        if stop <= now:
            self.core.runner.cancel(job, now)
            logger.info("job %s cancelled", job.id)
        elif stop <= job.start_at:
            raise Invalid(
                f"`spec.stopAtTime` ({stop}) must be after `spec.startAtTime` ({job.start_at})"
            )
        else:
            job.stop_at = stop
            job.update_date = now
            self.core.runner.restop(job)
        return _ok(job.to_json())

    async def delete_job(self, request: Request) -> Response:
        project = self._project(request)
        job = project.job(request.path_params["job_id"])
        self.core.runner.cancel(job, now_ms())  # no-op when already terminal
        self.store.remove_job(project, job)
        return _ok({"id": job.id, "deleted": True})

    async def job_logs(self, request: Request) -> Response:
        project = self._project(request)
        job = project.job(request.path_params["job_id"])
        query = request.query_params
        before = query_int(query, "beforeTime", minimum=0)
        after = query_int(query, "afterTime", minimum=0)
        max_entries = query_int(query, "maxEntries", minimum=1)
        raw_level = query.get("minLevel") or "Debug"
        level = _LEVEL_NAMES.get(raw_level.lower())
        if level is None:
            raise Invalid(
                f"query parameter `minLevel` must be one of {', '.join(LEVELS)}"
                f" (got {raw_level!r})",
            )
        limit = PAGE_LIMIT if max_entries is None else min(max_entries, PAGE_LIMIT)
        entries = job.logs.query_json(before=before, after=after, min_level=level, limit=limit)
        return Response(job.logs_body(entries), media_type="application/json")

    # ------------------------------------------------------------------------ admin

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI 3.1 document of the batch API (no auth: it is public knowledge)."""
        return _ok(openapi_document())

    async def health(self, request: Request) -> Response:
        return _ok({"status": "ok", "projectId": self.core.project_id})

    async def add_fault(self, request: Request) -> Response:
        self._admin(request)
        body = await self._body(request)
        method = body.get("method", "GET")
        if method is not None and not isinstance(method, str):
            raise Invalid("`method` must be a string or null")
        drop = body.get("drop", False)
        after_handling = body.get("afterHandling", False)
        if not isinstance(drop, bool) or not isinstance(after_handling, bool):
            raise Invalid("`drop` and `afterHandling` must be booleans")
        status = 503 if "status" not in body else opt_int(body, "status", minimum=100, maximum=599)
        fault = self.core.inject_fault(
            method=method,
            path=opt_str(body, "path") or ".*",
            status=status,
            times=opt_int(body, "times", minimum=1) if "times" in body else 1,
            retry_after=opt_number(body, "retryAfter", minimum=0),
            latency=opt_number(body, "latency", minimum=0),
            drop=drop,
            after_handling=after_handling,
        )
        return _ok(fault.to_json())

    async def clear_faults(self, request: Request) -> Response:
        self._admin(request)
        count = len(self.core.faults)
        self.core.clear_faults()
        return _ok({"cleared": count})

    async def list_requests(self, request: Request) -> Response:
        self._admin(request)
        return _ok({"data": [record.to_json() for record in self.core.requests]})

    async def clear_requests(self, request: Request) -> Response:
        self._admin(request)
        self.core.clear_requests()
        return _ok({"cleared": True})

    async def add_project(self, request: Request) -> Response:
        self._admin(request)
        body = await self._body(request)
        project_id, key = self.core.add_project(
            opt_str(body, "projectId"), opt_str(body, "secretKey")
        )
        return _ok(
            {
                "projectId": project_id,
                "secretKey": key,
                "deploymentId": self.core.deployment_of(project_id),
            }
        )

    async def seed_logs(self, request: Request) -> Response:
        self._admin(request)
        body = await self._body(request)
        job_id = req_str(body, "jobId")
        count = req_int(body, "count", minimum=0, maximum=10_000_000)
        self.core.seed_logs(
            job_id,
            count,
            per_ms=opt_int(body, "perMs", minimum=1) or 1,
            start_time=opt_int(body, "startTime", minimum=0),
            level=opt_str(body, "level") or "Info",
        )
        return _ok({"jobId": job_id, "count": count})

    async def seed_dataset(self, request: Request) -> Response:
        self._admin(request)
        body = await self._body(request)
        urls = body.get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise Invalid("`urls` must be an array of strings")
        ident = self.core.seed_dataset(
            urls, opt_str(body, "name") or "seeded", project_id=opt_str(body, "projectId")
        )
        return _ok({"id": ident})

    async def seed_webhook(self, request: Request) -> Response:
        self._admin(request)
        body = await self._body(request)
        retries = opt_int(body, "maxRetries", minimum=0, maximum=MAX_RETRIES)
        backoff = opt_int(body, "maxBackoffMs", minimum=0, maximum=MAX_BACKOFF_MS)
        project_id = opt_str(body, "projectId")
        ident = self.core.seed_webhook(
            req_str(body, "endpoint", max_len=2048),
            opt_str(body, "secret"),
            name=opt_str(body, "name") or "seeded",
            max_retries=DEFAULT_MAX_RETRIES if retries is None else retries,
            max_backoff_ms=DEFAULT_MAX_BACKOFF_MS if backoff is None else backoff,
            project_id=project_id,
        )
        # Admin calls may see the secret: a generated one is otherwise nobody's.
        webhook = self.store.projects[project_id or self.core.project_id].webhook(ident)
        return _ok({"id": ident, "secret": webhook.secret})

    async def log_ties(self, request: Request) -> Response:
        self._admin(request)
        body = await self._body(request)
        per_ms = opt_int(body, "perMs", minimum=1)
        self.core.log_ties(per_ms)
        return _ok({"perMs": per_ms})

    async def static(self, request: Request) -> Response:
        """A file of ``static_dir``, without auth (item URLs for tests and demos).

        Small files are read inline: a thread hop per read (as Starlette's StaticFiles
        does) costs more than the read itself and slows the runner's gathers.
        """
        relative = request.path_params["path"]
        if any(not ch.isprintable() for ch in relative):
            raise Invalid(f"a static path must not contain control characters (got {relative!a})")
        root = self.core.settings.static_dir
        try:
            target = (root / relative).resolve() if root is not None else None
            found = (
                target is not None
                and root is not None
                and target.is_relative_to(root)
                and target.is_file()
            )
        except OSError:  # e.g. a name too long for the file system
            found = False
        if not found or target is None:
            raise NotFound(f"no static file {relative!a}")
        if target.stat().st_size <= _INLINE_READ:
            content = target.read_bytes()
        else:
            content = await anyio.to_thread.run_sync(target.read_bytes)
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(content, media_type=media_type)

    # ------------------------------------------------------------------------ routes

    def routes(self) -> list[BaseRoute]:
        jobs = "/projects/{project_id}/batch/jobs"
        datasets = "/projects/{project_id}/batch/datasets"
        webhooks = "/projects/{project_id}/batch/webhooks"
        routes: list[BaseRoute] = [
            _route("/openapi.json", GET=self.openapi),
            _route("/_nexus/health", GET=self.health),
            _route("/_nexus/faults", POST=self.add_fault, DELETE=self.clear_faults),
            _route("/_nexus/requests", GET=self.list_requests, DELETE=self.clear_requests),
            _route("/_nexus/projects", POST=self.add_project),
            _route("/_nexus/seed/logs", POST=self.seed_logs),
            _route("/_nexus/seed/datasets", POST=self.seed_dataset),
            _route("/_nexus/seed/webhooks", POST=self.seed_webhook),
            _route("/_nexus/log-ties", PUT=self.log_ties),
            _route("/_nexus/uploads/{token}", PUT=self.upload),
            _route(jobs, GET=self.list_jobs, POST=self.create_job),
            _route(
                jobs + "/{job_id}", GET=self.get_job, PATCH=self.patch_job, DELETE=self.delete_job
            ),
            _route(jobs + "/{job_id}/logs", GET=self.job_logs),
            _route(datasets, GET=self.list_datasets, POST=self.create_dataset),
            _route(datasets + "/{dataset_id}", GET=self.get_dataset, DELETE=self.delete_dataset),
            # Before ".../{webhook_id}" so the ":test" suffix is not read as part of an id.
            _route(webhooks + "/{webhook_id}:test", POST=self.test_webhook),
            _route(webhooks, GET=self.list_webhooks, POST=self.create_webhook),
            _route(
                webhooks + "/{webhook_id}",
                GET=self.get_webhook,
                PATCH=self.update_webhook,
                DELETE=self.delete_webhook,
            ),
            _route(webhooks + "/{webhook_id}/secret", PUT=self.update_webhook_secret),
        ]
        routes.append(_route("/static/{path:path}", GET=self.static))
        return routes


def _route(path: str, **handlers: Handler) -> Route:
    """One route per path, so a wrong method is a 405 whose Allow lists every method."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(handlers))


# ---------------------------------------------------------------------------- errors


STATUS: dict[type[DomainError], int] = {
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    TimedOut: 408,
    Conflict: 409,
    TooLarge: 413,
    Unavailable: 503,
}
"""The one place a domain error becomes an HTTP status: by its type, never its message."""


def status_of(exc: DomainError) -> int:
    """The HTTP status of a domain error (its nearest class in ``STATUS``).

    Raises:
        LookupError: a ``DomainError`` type the table does not cover (a bug: it answers 500).
    """
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    raise LookupError(f"no HTTP status for {type(exc).__name__}")


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = status_of(exc)
    return JSONResponse(error_json(exc.message, status, exc.code), status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404:
        message = f"no such resource: {request.method} {request.url.path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = (
            f"method {request.method} is not allowed on {request.url.path} (allowed: {allowed})"
        )
    else:
        message = str(exc.detail)
    return JSONResponse(error_json(message, status), status, exc.headers)


async def _disconnect(request: Request, exc: Exception) -> Response:
    # Nobody will read this answer; it only keeps the disconnect out of the error log.
    return JSONResponse(error_json("client disconnected", 400), 400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Sent from outside every middleware, so the request's ID is added here.
    headers = {REQUEST_ID_HEADER: request.scope.get(_REQUEST_ID_KEY, "")}
    return JSONResponse(error_json("internal server error", 500), 500, headers)


REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_KEY = "nexus.request_id"


class RequestIdMiddleware:
    """Gives every answer an ``X-Request-Id`` (``req_...``), as the real API does.

    Outermost but for Starlette's error layer, so injected faults carry one too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope[_REQUEST_ID_KEY] = new_id("req")
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def build_app(core: NexusCore, *, lifespan: bool) -> Starlette:
    """The ASGI app for ``core``; with ``lifespan`` it runs the runner while served."""

    @asynccontextmanager
    async def run_core(app: Starlette) -> AsyncIterator[None]:
        async with core.running():
            yield

    app = Starlette(
        routes=_Api(core).routes(),
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                ControlMiddleware,
                faults=core.faults,
                requests=core.request_log,
                latency=lambda: core.latency,
            ),
            Middleware(
                BodyGuard,
                timeout=core.settings.body_timeout,
                max_bytes=max(core.settings.max_body_bytes, core.settings.max_upload_bytes),
            ),
        ],
        exception_handlers={
            DomainError: _domain_error,
            HTTPException: _http_error,
            ClientDisconnect: _disconnect,
            Exception: _internal_error,
        },
        lifespan=run_core if lifespan else None,
    )
    app.state.nexus = core
    return app


def create_app(settings: ServerSettings | None = None, /, **overrides: Any) -> Starlette:
    """A standalone ASGI app of a fresh local Nexus.

    The runner (jobs, webhook tests) starts with the app's lifespan, which any ASGI server
    runs. ``httpx.ASGITransport`` does not run lifespans, so enter it yourself:

    ```python
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        ...
    ```

    Without it, creating a job or testing a webhook answers 503 ``runner_not_running``;
    every other call works. The admin controls are on ``app.state.nexus``
    (a ``NexusCore``: ``inject_fault``, ``seed_dataset``, ``project_id``, ...).

    Args:
        settings: the server's options (``host`` and ``port`` are not used: whoever
            serves the app chooses them).
        **overrides: fields of ``ServerSettings`` to change.

    Returns:
        The Starlette app; its ``NexusCore`` is ``app.state.nexus``.

    Raises:
        TypeError: an override that is not a ``ServerSettings`` field.
        ValueError: a bad option value, naming the option.
    """
    return build_app(NexusCore(settings, **overrides), lifespan=True)
