"""The batch pipeline, under structured concurrency.

``Runner.run`` owns one ``httpx.AsyncClient`` and one task group; it is started with
``await task_group.start(runner.run)`` by whoever owns the server (``LocalNexus`` or the
app's lifespan) and everything it does ends when that task group is cancelled.

Each job is one task in that group:

    with CancelScope(deadline=stopAtTime)        # cancel() or the stop time end it
        sleep until startAtTime                  # overview Waiting, message Waiting
        async with job slot (job_concurrency)    # at most N jobs flow at once
            item_concurrency workers, each taking the next item:
                gather -> preprocess -> predict -> deliver

Workers pull item indices from one shared iterator, so at most ``item_concurrency``
items of a job are in flight and a job of 10,000 items holds that many tasks, not 10,000.
Decoding and prediction are CPU work: they run in worker threads, one per core
(``anyio.to_thread.run_sync`` with the runner's own limiter; more threads only contend
for the GIL), both stages in one hop since a hop costs more than decoding a small image.
Their outcomes are still recorded one after the other, each with its own duration.
Everything else is anyio only, so the runner works under asyncio and trio alike.

Every stage outcome is recorded through ``Job.record``, which refuses changes once the
job is terminal; so a cancel takes effect the instant the PATCH is handled, and an item
finishing in a thread a moment later cannot bump a counter.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import httpx
from PIL import Image

from ..signing import sign
from ._clock import clock_seconds, make_clock, now_ms
from ._egress import Refused, Target, target_of, tls_context
from ._predictor import Predictor, check_predictions
from ._scenarios import DeliveryScenarios
from ._settings import ServerSettings
from ._state import Job, Project, Webhook

__all__ = ["DeliveryResult", "Runner", "backoff_ms"]

logger = logging.getLogger("nexus_async.server")

BACKOFF_BASE_MS = 250
_RESPONSE_READ = 64 * 1024  # read past this, the connection is closed instead
USER_AGENT = "nexus-async-local-server"


@dataclass(frozen=True)
class DeliveryResult:
    """How one delivery (all its attempts) ended."""

    ok: bool
    attempts: int
    response_code: int
    reason: str
    latency_ms: float


@dataclass(frozen=True)
class _CpuOutcome:
    decode_ms: float
    decode_error: str | None
    predict_ms: float = 0.0
    predict_error: str | None = None
    predictions: list[dict[str, Any]] = field(default_factory=list)


class StageError(Exception):
    """An item failed a stage; the message is the log entry's reason."""


def backoff_ms(retry: int, max_backoff_ms: int) -> int:
    """Delay before retry number ``retry`` (1-based): 250 ms doubling, capped.

    Deterministic (no jitter) so tests and users can predict delivery timing.
    """
    return min(max_backoff_ms, BACKOFF_BASE_MS << min(retry - 1, 30))


def _elapsed_ms(start: float) -> float:
    return round((clock_seconds() - start) * 1000.0, 3)


def _ms_since(start: float) -> float:
    """Like ``_elapsed_ms``, for worker threads (no event loop clock there)."""
    return round((time.perf_counter() - start) * 1000.0, 3)


def _describe(exc: BaseException) -> str:
    """``Type: message`` of the error that really happened.

    An exception group (a task group's "unhandled errors in a TaskGroup") says nothing by
    itself: its first leaf is described instead.
    """
    for _ in range(10):  # bounded: groups may nest
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or not inner or not isinstance(inner[0], BaseException):
            break
        exc = inner[0]
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decode_data_url(url: str, max_bytes: int) -> bytes:
    """The bytes of a ``data:`` URL (base64 or percent-encoded)."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise StageError("malformed data: URL (no comma)")
    if header.lower().endswith(";base64"):
        if len(payload) * 3 // 4 > max_bytes + 3:
            raise StageError(f"item is larger than {max_bytes} bytes")
        try:
            data = base64.b64decode(urllib.parse.unquote(payload), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StageError(f"malformed base64 in data: URL ({exc})") from exc
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise StageError(f"item is larger than {max_bytes} bytes")
    return data


class Runner:
    """Runs jobs; also performs webhook test calls with the same delivery code."""

    def __init__(self, settings: ServerSettings, predictor: Predictor) -> None:
        self.settings = settings
        self.predictor = predictor
        self.clock = make_clock(settings.clock)
        self.scenarios = DeliveryScenarios()
        self._client: httpx.AsyncClient | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._job_slots = anyio.CapacityLimiter(settings.job_concurrency)
        # One cancel scope per job that has not ended: cancel() and the stop time end it.
        self._scopes: dict[str, anyio.CancelScope] = {}
        # CPU stages get one thread per core: more threads only fight over the GIL.
        self._cpu = anyio.CapacityLimiter(os.cpu_count() or 1)

    @property
    def running(self) -> bool:
        return self._tg is not None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the runner is not running")
        return self._client

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; ``task_status.started()`` once jobs can be submitted."""
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        async with httpx.AsyncClient(
            trust_env=False,
            verify=tls_context(),
            follow_redirects=False,
            limits=limits,
            headers={"user-agent": USER_AGENT},
        ) as client:
            # The client outlives the task group: cancelled jobs may still touch it while
            # they unwind.
            self._client = client
            try:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    task_status.started()
                    await anyio.sleep_forever()
            finally:
                self._client, self._tg = None, None

    def submit(self, project: Project, job: Job) -> None:
        """Start running ``job`` (in the runner's task group)."""
        if self._tg is None:
            raise RuntimeError("the runner is not running")
        self._scopes[job.id] = self.clock.scope_until_ms(job.stop_at)
        run = self.clock.tracked(self._run_job)
        self._tg.start_soon(run, project, job, name=f"nexus_async.server.job {job.id}")

    def restop(self, job: Job) -> None:
        """The job's stop time moved (a PATCH with a future stopAtTime)."""
        scope = self._scopes.get(job.id)
        if scope is not None:
            self.clock.move_scope(scope, job.stop_at)

    def cancel(self, job: Job, at: int) -> None:
        """Cancel ``job`` now (the cancel PATCH, or a delete); nothing if it has ended.

        The state changes first, so the job is terminal the instant the request is
        handled; then its items in flight are cancelled.
        """
        job.cancel(at)
        scope = self._scopes.get(job.id)
        if scope is not None:
            scope.cancel()

    async def _target(self, url: str) -> Target:
        return await target_of(
            url,
            allow_private=self.settings.allow_private_addresses,
            allowed_hosts=self.settings.allowed_hosts,
        )

    # ------------------------------------------------------------------------ jobs

    async def _run_job(self, project: Project, job: Job) -> None:
        scope = self._scopes[job.id]
        try:
            with scope:
                await self.clock.sleep_until_ms(job.start_at)
                async with self.clock.holding(self._job_slots):
                    job.begin()
                    logger.info("job %s started: %d items", job.id, len(job.items))
                    indices = iter(range(len(job.items)))
                    workers = min(self.settings.item_concurrency, len(job.items))
                    # This task only waits for its workers, which count themselves.
                    with self.clock.idle() as waiting:
                        async with anyio.create_task_group() as tg:
                            for _ in range(workers):
                                worker = waiting.tracked(self._worker)
                                tg.start_soon(worker, project, job, indices)
                job.finish()
        finally:
            del self._scopes[job.id]
            self.clock.scope_done(scope)
        if scope.cancelled_caught and not job.terminal:
            job.expire()
        logger.info("job %s ended: %s (%s)", job.id, job.overview, job.message)

    async def _worker(self, project: Project, job: Job, indices: Iterator[int]) -> None:
        for index in indices:
            await self._process(project, job, job.items[index])

    async def _process(self, project: Project, job: Job, url: str) -> None:
        started = clock_seconds()
        try:
            data = await self._gather(url)
        except StageError as exc:
            job.record("gather", url, _elapsed_ms(started), str(exc))
            return
        job.record("gather", url, _elapsed_ms(started))

        outcome = await anyio.to_thread.run_sync(self._decode_and_predict, data, limiter=self._cpu)
        job.record("preprocess", url, outcome.decode_ms, outcome.decode_error)
        if outcome.decode_error is not None:
            return
        job.record("predict", url, outcome.predict_ms, outcome.predict_error)
        if outcome.predict_error is not None:
            return

        started = clock_seconds()
        reasons = await self._deliver_everywhere(project, job, url, outcome.predictions)
        job.record("deliver", url, _elapsed_ms(started), "; ".join(reasons) if reasons else None)

    async def _gather(self, url: str) -> bytes:
        limit = self.settings.max_item_bytes
        if url[:5].lower() == "data:":
            return decode_data_url(url, limit)
        with anyio.move_on_after(self.settings.gather_timeout):
            try:
                target = await self._target(url)
                async with self.client.stream(
                    "GET", target.url, headers=target.headers, extensions=target.extensions
                ) as response:
                    if not 200 <= response.status_code < 300:
                        raise StageError(f"GET {url} answered HTTP {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise StageError(f"item is larger than {limit} bytes ({declared})")
                    buffer = bytearray()
                    async for chunk in response.aiter_bytes():
                        buffer += chunk
                        if len(buffer) > limit:
                            raise StageError(f"item is larger than {limit} bytes")
                    return bytes(buffer)
            except StageError:
                raise
            except Refused as exc:
                raise StageError(f"destination refused: {exc}") from None
            except Exception as exc:  # httpx errors, and any URL httpx cannot use
                raise StageError(f"cannot fetch item: {_describe(exc)}") from exc
        raise StageError(f"fetching the item timed out after {self.settings.gather_timeout:g} s")

    def _decode(self, data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            cap = self.settings.max_image_pixels
            if width * height > cap:  # checked on the header, before any pixel is decoded
                raise ValueError(
                    f"image of {width}x{height} pixels is larger than max_image_pixels ({cap})"
                )
            image.load()
            converted: Image.Image = image.convert("RGB")
            return converted

    def _decode_and_predict(self, data: bytes) -> _CpuOutcome:
        """Preprocess and predict in one worker-thread hop.

        For small images a hop costs more than the work, so both CPU stages share one;
        their outcomes are still recorded one after the other, with their own durations.
        """
        started = time.perf_counter()
        try:
            image = self._decode(data)
        except Exception as exc:  # Pillow raises many types for bad input
            return _CpuOutcome(_ms_since(started), f"cannot decode image: {_describe(exc)}")
        decode_ms = _ms_since(started)
        started = time.perf_counter()
        try:
            predictions = check_predictions(self.predictor.predict(image))
        except Exception as exc:  # a user's predictor may raise anything
            return _CpuOutcome(
                decode_ms, None, _ms_since(started), f"prediction failed: {_describe(exc)}"
            )
        return _CpuOutcome(decode_ms, None, _ms_since(started), None, predictions)

    # ------------------------------------------------------------------------ delivery

    async def _deliver_everywhere(
        self, project: Project, job: Job, url: str, predictions: list[dict[str, Any]]
    ) -> list[str]:
        """Deliver to every destination at once; return the failure reasons."""
        reasons: list[str] = []

        async def one(webhook_id: str) -> None:
            webhook = project.webhooks.get(webhook_id)
            if webhook is None:
                reasons.append(f"webhook {webhook_id} no longer exists")
                return
            payload = {
                "jobId": job.id,
                "projectId": project.id,
                "item": {"kind": "Image", "url": url},
                "deliveryId": f"delivery_{uuid.uuid4()}",
                "createTime": now_ms(),
                "predictions": predictions,
            }
            result = await self.scenarios.run(
                lambda: self.deliver(webhook, payload),
                self.clock,
                accepted=lambda result: result.ok,
                dropped=DeliveryResult(True, 0, 200, "", 0.0),
            )
            if not result.ok:
                reasons.append(
                    f"webhook {webhook_id}: {result.reason} after {result.attempts} attempts"
                )

        if len(job.webhook_ids) == 1:
            await one(job.webhook_ids[0])
        else:
            async with anyio.create_task_group() as tg:
                for webhook_id in job.webhook_ids:
                    tg.start_soon(one, webhook_id)
        return reasons

    async def deliver(
        self, webhook: Webhook, payload: dict[str, Any], *, attempts: int | None = None
    ) -> DeliveryResult:
        """POST one signed payload, retrying per the webhook's policy.

        The body and ``webhook-id`` (= ``payload["deliveryId"]``) are the same on every
        attempt; the timestamp and signature are made afresh, with the webhook's secret as
        it is at that attempt (a rotation applies to the next attempt).

        Args:
            webhook: the destination.
            payload: the JSON body.
            attempts: at most this many attempts; default ``maxRetries + 1``.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = str(payload["deliveryId"])
        started = clock_seconds()
        code, reason = 0, ""
        made = 0
        for attempt in range(webhook.max_retries + 1 if attempts is None else attempts):
            if attempt:
                await self.clock.sleep(backoff_ms(attempt, webhook.max_backoff_ms) / 1000.0)
            made += 1
            timestamp = now_ms() // 1000
            headers = {
                "content-type": "application/json",
                "webhook-id": delivery_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(webhook.secret, delivery_id, timestamp, body),
            }
            try:
                code, reason = await self._post(webhook.endpoint, body, headers)
            except Refused as exc:  # nothing was sent, and retrying cannot help
                reason = f"destination refused: {exc}"
                return DeliveryResult(False, made - 1, 0, reason, _elapsed_ms(started))
            if 200 <= code < 300:
                return DeliveryResult(True, made, code, "", _elapsed_ms(started))
        return DeliveryResult(False, made, code, reason, _elapsed_ms(started))

    async def _post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """One attempt: ``(status or 0, failure reason or "")``.

        The answer's body is read (so the connection can be reused) but never kept.

        Raises:
            Refused: the endpoint is not a destination the server may reach.
        """
        with anyio.move_on_after(self.settings.delivery_timeout):
            try:
                target = await self._target(endpoint)
                async with self.client.stream(
                    "POST",
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                ) as response:
                    seen = 0
                    async for chunk in response.aiter_bytes():
                        seen += len(chunk)
                        if seen > _RESPONSE_READ:
                            break
                    code = response.status_code
                    return code, "" if 200 <= code < 300 else f"HTTP {code}"
            except Refused:
                raise
            except Exception as exc:  # httpx errors, and any URL httpx cannot use
                return 0, _describe(exc)
        return 0, f"timed out after {self.settings.delivery_timeout:g} s"

    async def test_webhook(self, project: Project, webhook: Webhook) -> dict[str, Any]:
        """The ``:test`` call: one signed sample delivery, whatever the retry policy.

        One attempt bounds the call by ``delivery_timeout`` (the whole retry schedule can
        take hours). Only the outcome and timing are returned, never the answer's body:
        the server must not read internal services for its callers.
        """
        payload = {
            "jobId": "",
            "projectId": project.id,
            "item": {"kind": "Image", "url": ""},
            "deliveryId": f"delivery_{uuid.uuid4()}",
            "createTime": now_ms(),
            "predictions": [],
            "test": True,
        }
        result = await self.deliver(webhook, payload, attempts=1)
        return {
            "status": "Succeeded" if result.ok else "Failed",
            "responseCode": result.response_code,
            # Whole milliseconds: clients of the hosted API decode this field as an integer.
            "latencyMs": round(result.latency_ms),
            "attemptCount": result.attempts,
            "body": "",  # the spec's field, always empty (see above)
            "reason": result.reason,
        }
