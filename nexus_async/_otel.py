"""OpenTelemetry traces and metrics, when `opentelemetry-api` is installed (the `otel` extra).

Nothing here imports OpenTelemetry at `import nexus_async`: the first request (or
wait, or log stream) tries the import once per process, so without the package a call
costs one None check. With it, everything goes through the global tracer and meter
providers, which are the API's proxies (no-ops) until the application configures an
SDK.

While both global providers are still the API's defaults (its proxies or no-ops), `get()`
answers None and nothing is traced or measured: a no-op span and metric cost about 40 µs
of CPU per call for nothing. The check is two global lookups and type tests (about 1 µs)
on every call, so an application that configures an SDK at any time, even after its
first requests, is traced from its next call on: the tracer and instruments made
earlier are the API's proxies, which forward to the providers set later. Once either
provider is configured, spans and metrics are both recorded.

Spans:

* `{method} {route}` (kind CLIENT), one per API call, retries included. `route` is the
  path's template (`/projects/{projectId}/batch/jobs/{jobId}`), never the raw path.
  Attributes: `http.request.method`, `url.template`, `server.address`, `server.port`,
  `http.response.status_code`, `http.request.resend_count`, `nexus.attempts`,
  `error.type`. Each retry is an event `retry` (`nexus.retry.attempt`,
  `nexus.retry.delay_s`, `nexus.retry.reason`); a 429's client-wide pause an event
  `rate_limit_pause` (`nexus.pause_s`).
* `nexus.wait {kind}` per wait (`wait_until_done`, `wait_all`, `as_completed`,
  `datasets.wait_until_done`), each poll an event `poll` with the overview and the
  item counters (or, for many jobs, how many are pending and finished). The waits that
  are one coroutine make their span current, so their requests are its children.
* `nexus.logs {kind}` per log stream (`get_all_logs`, `follow_logs`), with
  `nexus.log.entries` (handed to the caller), `nexus.log.pages` and
  `nexus.log.resumes` (polls that went on after the API could not be reached).

Metrics (meter `nexus_async`): `nexus.client.requests` (calls, by method, route and
status), `nexus.client.retries` (by reason), `nexus.client.rate_limit_pauses`,
`nexus.client.wait.duration` (seconds, by kind and outcome), `nexus.client.log.entries`.

No attribute holds a header, a body, a query or a message from the server: only
methods, templates, host names, statuses, counts, overviews and error class names.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "LogSpan",
    "RequestSpan",
    "WaitSpan",
    "fetching_logs",
    "get",
    "log_page",
    "log_resumed",
    "log_span",
    "poll_failed",
    "polled",
    "route_template",
    "wait_span",
]

T = TypeVar("T")

# Collection segments and the name of the ID that follows each.
_ID_NAMES = {
    "projects": "projectId",
    "jobs": "jobId",
    "datasets": "datasetId",
    "webhooks": "webhookId",
}
_unavailable = False
_telemetry: _Telemetry | None = None


def route_template(path: str) -> str:
    """The route of an API path: every ID replaced by its name, e.g. `{jobId}`.

    A suffix after a colon (`:test`) is kept; so are the collection names.
    """
    parts = path.split("/")
    for index in range(1, len(parts)):
        name = _ID_NAMES.get(parts[index - 1])
        if name is not None and parts[index]:
            _, colon, verb = parts[index].partition(":")
            parts[index] = "{" + name + "}" + colon + verb
    return "/".join(parts)


def get() -> _Telemetry | None:
    """The tracer and instruments, or None: nothing to record.

    None without `opentelemetry-api` (the import is tried once per process), and
    while the application has configured neither a tracer nor a meter provider.
    Until something in the process has imported `opentelemetry`, nothing can have
    configured one, so it is not imported here either (about 10 ms).
    """
    global _telemetry, _unavailable
    telemetry = _telemetry
    if telemetry is None:
        if _unavailable or "opentelemetry" not in sys.modules:
            return None
        try:
            telemetry = _telemetry = _Telemetry()
        except ImportError:
            _unavailable = True
            return None
    return telemetry if telemetry.configured() else None


class _Telemetry:
    """The SDK's tracer and metric instruments, from the global providers."""

    def __init__(self) -> None:
        from opentelemetry import metrics, trace

        self.trace = trace
        self._tracer_provider = trace.get_tracer_provider
        self._meter_provider = metrics.get_meter_provider
        self._defaults = _default_provider_types(trace, metrics)
        self.tracer = trace.get_tracer("nexus_async", __version__)
        meter = metrics.get_meter("nexus_async", __version__)
        self.requests = meter.create_counter(
            "nexus.client.requests", unit="{request}", description="API calls, retries included"
        )
        self.retries = meter.create_counter(
            "nexus.client.retries", unit="{retry}", description="Retried attempts"
        )
        self.pauses = meter.create_counter(
            "nexus.client.rate_limit_pauses",
            unit="{pause}",
            description="429 answers that paused every request of a client",
        )
        self.wait_duration = meter.create_histogram(
            "nexus.client.wait.duration", unit="s", description="How long waits took"
        )
        self.log_entries = meter.create_counter(
            "nexus.client.log.entries", unit="{entry}", description="Log entries streamed"
        )

    def configured(self) -> bool:
        """Whether the application has set a tracer or meter provider (of an SDK)."""
        defaults = self._defaults
        return (
            type(self._tracer_provider()) not in defaults
            or type(self._meter_provider()) not in defaults
        )

    @contextlib.contextmanager
    def request_span(self, method: str, url: str, route: str | None) -> Iterator[RequestSpan]:
        """A CLIENT span around one call; `RequestSpan` notes its retries and answer."""
        attributes: dict[str, Any] = {"http.request.method": method}
        attributes.update(_server(url.split("/", 3)[2] if "//" in url else ""))
        if route is not None:
            attributes["url.template"] = route
        name = method if route is None else f"{method} {route}"
        kind = self.trace.SpanKind.CLIENT
        with self.tracer.start_as_current_span(
            name,
            kind=kind,
            attributes=attributes,
            record_exception=False,  # messages may quote the server
            set_status_on_exception=False,
        ) as span:
            noted = RequestSpan(self, span)
            status: int | None = None
            try:
                yield noted
            except BaseException as exc:
                status = getattr(exc, "status", None)
                attempts = getattr(exc, "attempts", noted.attempts)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(self.trace.StatusCode.ERROR)
                noted.answered(status, attempts)
                raise
            finally:
                metric: dict[str, Any] = {"http.request.method": method}
                if route is not None:
                    metric["url.template"] = route
                if noted.status is not None:
                    metric["http.response.status_code"] = noted.status
                self.requests.add(1, metric)


def _default_provider_types(trace: Any, metrics: Any) -> frozenset[type]:
    """The API's own provider classes: what the globals are until an SDK is configured.

    The API's proxy meter provider has no public name; should a later release rename
    it, the meter provider looks configured and calls are measured as before.
    """
    types: set[type] = {trace.ProxyTracerProvider, trace.NoOpTracerProvider}
    types.add(metrics.NoOpMeterProvider)
    with contextlib.suppress(ImportError):
        from opentelemetry.metrics._internal import _ProxyMeterProvider

        types.add(_ProxyMeterProvider)
    return frozenset(types)


@functools.lru_cache(maxsize=64)
def _server(netloc: str) -> dict[str, Any]:
    """`server.address` and `server.port` of a URL's `host:port` (a client talks to few)."""
    parts = urllib.parse.urlsplit("//" + netloc)
    server: dict[str, Any] = {}
    if parts.hostname:
        server["server.address"] = parts.hostname
    with contextlib.suppress(ValueError):  # a port that is not a number: left out
        if parts.port is not None:
            server["server.port"] = parts.port
    return server


@attrs.define
class RequestSpan:
    """What the HTTP layer tells the span of one call."""

    _telemetry: _Telemetry
    _span: Span
    attempts: int = 1
    status: int | None = None

    def answered(self, status: int | None, attempts: int) -> None:
        """The call's final answer (None: none came) after `attempts` attempts."""
        self.status, self.attempts = status, attempts
        if status is not None:
            self._span.set_attribute("http.response.status_code", status)
        self._span.set_attribute("nexus.attempts", attempts)
        self._span.set_attribute("http.request.resend_count", attempts - 1)

    def retry(self, attempt: int, delay: float, reason: str) -> None:
        """A retry after failed attempt `attempt`, `delay` seconds from now."""
        self._span.add_event(
            "retry",
            {
                "nexus.retry.attempt": attempt,
                "nexus.retry.delay_s": delay,
                "nexus.retry.reason": reason,
            },
        )
        self._telemetry.retries.add(1, {"nexus.retry.reason": reason})

    def paused(self, seconds: float) -> None:
        """A 429 paused the whole client for `seconds`."""
        self._span.add_event("rate_limit_pause", {"nexus.pause_s": seconds})
        self._telemetry.pauses.add(1)


# -------------------------------------------------------------------------- waits

# The wait span of the waiting coroutine, for `polled` (never a span of the caller's).
_WAIT: ContextVar[WaitSpan | None] = ContextVar("nexus_async_wait_span", default=None)


class WaitSpan:
    """The span of one wait; `start` gives a no-op one without OpenTelemetry."""

    def __init__(self, telemetry: _Telemetry | None, span: Span | None, kind: str) -> None:
        self._telemetry = telemetry
        self._span = span
        self._kind = kind
        self._started = time.perf_counter()
        self._ended = False

    @classmethod
    def idle(cls) -> WaitSpan:
        """A span that records nothing (a wait not started yet)."""
        return cls(None, None, "")

    @classmethod
    def start(cls, kind: str, **attributes: Any) -> WaitSpan:
        """A span `nexus.wait {kind}`, not made current (for waits that are iterators)."""
        telemetry = get()
        if telemetry is None:
            return cls(None, None, kind)
        span = telemetry.tracer.start_span(f"nexus.wait {kind}", attributes=_named(attributes))
        return cls(telemetry, span, kind)

    def poll(self, **attributes: Any) -> None:
        """One poll's event."""
        if self._span is not None and not self._ended:
            self._span.add_event("poll", _named(attributes))

    def end(self, error: BaseException | None = None) -> None:
        """End the span (once), recording the wait's duration and outcome."""
        if self._span is None or self._telemetry is None or self._ended:
            return
        self._ended = True
        outcome = "done" if error is None else type(error).__name__
        if error is not None:
            self._span.set_attribute("error.type", outcome)
            self._span.set_status(self._telemetry.trace.StatusCode.ERROR)
        self._telemetry.wait_duration.record(
            time.perf_counter() - self._started,
            {"nexus.wait.kind": self._kind, "nexus.wait.outcome": outcome},
        )
        self._span.end()


@contextlib.contextmanager
def wait_span(kind: str, **attributes: Any) -> Iterator[WaitSpan]:
    """The span of a wait that is one coroutine: current, so its requests are children."""
    wait = WaitSpan.start(kind, **attributes)
    if wait._span is None or wait._telemetry is None:
        yield wait
        return
    token = _WAIT.set(wait)
    try:
        with wait._telemetry.trace.use_span(
            wait._span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield wait
    except BaseException as exc:
        wait.end(exc)
        raise
    finally:
        _WAIT.reset(token)
        wait.end()


def without_parent() -> None:
    """Make the rest of this task's spans roots: for a task that serves many callers.

    A background task inherits the context of whoever started it, and with it that
    caller's span, which may end long before the task does.
    """
    telemetry = get()
    if telemetry is not None:
        from opentelemetry import context

        context.attach(context.Context())  # never detached: it lasts as long as the task


def polled(snapshot: Any) -> None:
    """Note a poll's snapshot (a Job or a Dataset) on the current wait's span, if any."""
    wait = _WAIT.get()
    if wait is None:
        return
    status = snapshot.status
    attributes: dict[str, Any] = {"overview": str(status.overview)}
    items = getattr(status, "items", None)
    if items is not None:  # a job's per-stage counters
        attributes.update(
            {f"items.{f.name}": getattr(items, f.name) for f in attrs.fields(type(items))}
        )
    item_count = getattr(status, "item_count", None)
    if item_count is not None:  # a dataset's
        attributes["item_count"] = item_count
    wait.poll(**attributes)


def poll_failed(error: BaseException) -> None:
    """Note a poll that failed (and is ridden out) on the current wait's span, if any."""
    wait = _WAIT.get()
    if wait is not None:
        wait.poll(**{"error.type": type(error).__name__})


def _named(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attribute names in the SDK's namespace (`nexus.`), semantic-convention ones as given."""
    return {key if key.startswith("error.") else f"nexus.{key}": v for key, v in attributes.items()}


# --------------------------------------------------------------------- log streams


class LogSpan:
    """The span of one log stream, `nexus.logs {kind}`; a no-op without OpenTelemetry."""

    def __init__(self, kind: str, job_id: str) -> None:
        self._kind = kind
        self._telemetry = get()
        self._span: Span | None = None
        if self._telemetry is not None:
            self._span = self._telemetry.tracer.start_span(
                f"nexus.logs {kind}", attributes={"nexus.job_id": job_id}
            )
        self.entries = self.pages = self.resumes = 0

    def entry(self) -> None:
        """An entry handed to the caller."""
        self.entries += 1
        if self._telemetry is not None:
            self._telemetry.log_entries.add(1, {"nexus.log.stream": self._kind})

    def end(self, error: BaseException | None = None) -> None:
        span, self._span = self._span, None
        if span is None or self._telemetry is None:
            return
        span.set_attributes(
            {
                "nexus.log.entries": self.entries,
                "nexus.log.pages": self.pages,
                "nexus.log.resumes": self.resumes,
            }
        )
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(self._telemetry.trace.StatusCode.ERROR)
        span.end()


# The log stream whose next entry is being fetched, for `log_page` and `log_resumed`.
_LOG: ContextVar[LogSpan | None] = ContextVar("nexus_async_log_span", default=None)


def log_span(kind: str, job_id: str) -> LogSpan | None:
    """A span for one log stream; None (nothing to do) without OpenTelemetry."""
    return None if get() is None else LogSpan(kind, job_id)


@contextlib.contextmanager
def fetching_logs(span: LogSpan | None) -> Iterator[None]:
    """While a stream fetches its next page: `log_page` and `log_resumed` count on `span`.

    The span is current only then (a page fetched ahead by a background task started
    there inherits it), never while the caller's code runs between entries.
    """
    if span is None:
        yield
        return
    token = _LOG.set(span)
    try:
        yield
    finally:
        _LOG.reset(token)


def log_page() -> None:
    """Note a page of the current log stream read."""
    span = _LOG.get()
    if span is not None:
        span.pages += 1


def log_resumed() -> None:
    """Note the current log stream going on after a failed poll."""
    span = _LOG.get()
    if span is not None:
        span.resumes += 1
