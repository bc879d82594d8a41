"""OpenTelemetry: spans of requests, waits and log streams, and metrics, with in-memory exporters.

The OTel SDK's providers are installed once per process (OpenTelemetry allows one
global provider); each test starts from an empty exporter.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.util.types import Attributes

from nexus_async import AsyncClient, Jobs, NotFoundError, RetryPolicy, _otel
from nexus_async.server import LocalNexus

from .live import job_options, png_data_url, quiet_job

JOB_ROUTE = "/projects/{projectId}/batch/jobs/{jobId}"
ONE_ATTEMPT = RetryPolicy(attempts=1, total_time=30.0)


class _Switch(Sampler):
    """Records spans only while this module's tests run: later tests pay nothing."""

    on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        sampler = ALWAYS_ON if self.on else ALWAYS_OFF
        return sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "on while the telemetry tests run"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    # OpenTelemetry takes one global provider per process: set once, switched per module.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        tracer_provider = TracerProvider(sampler=_SWITCH)
        tracer_provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
    _SWITCH.on = True
    try:
        yield _EXPORTER, _READER
    finally:
        _SWITCH.on = False
        _EXPORTER.clear()


@pytest.fixture
def spans(providers: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> InMemorySpanExporter:
    exporter, _ = providers
    exporter.clear()
    return exporter


@pytest.fixture
def reader(providers: tuple[InMemorySpanExporter, InMemoryMetricReader]) -> InMemoryMetricReader:
    return providers[1]


def named(finished: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


def children(finished: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        s for s in finished if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def all_texts(finished: Sequence[ReadableSpan]) -> Iterator[str]:
    """Every name and attribute value of the spans and their events, as text."""
    for span in finished:
        yield span.name
        for key, value in (span.attributes or {}).items():
            yield f"{key}={value!r}"
        for event in span.events:
            yield event.name
            for key, value in (event.attributes or {}).items():
                yield f"{key}={value!r}"


def test_route_templates() -> None:
    assert _otel.route_template("/projects/proj_1/batch/jobs/batchjob_2/logs") == (
        "/projects/{projectId}/batch/jobs/{jobId}/logs"
    )
    assert _otel.route_template("/projects/proj_1/batch/webhooks/webhook_3:test") == (
        "/projects/{projectId}/batch/webhooks/{webhookId}:test"
    )
    assert _otel.route_template("/projects/proj_1/batch/datasets") == (
        "/projects/{projectId}/batch/datasets"
    )


async def test_a_wait_of_three_polls_is_one_span_with_three_polls_and_requests(
    client: AsyncClient, jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    job = await jobs.create("traced", job_options(nexus, items=1))
    await jobs.wait_until_done(job.id, interval=0.05, timeout=30, raise_exception_if=None)
    # The job is finished; its next two polls fail (each one attempt), the third reads it.
    single = client.with_options(retry=ONE_ATTEMPT).get_project(nexus.project_id).batch.jobs
    nexus.inject_fault("GET", f"/jobs/{job.id}$", status=503, times=2)
    spans.clear()
    final = await single.wait_until_done(job.id, interval=0.05, timeout=30, raise_exception_if=None)
    assert final.is_finished
    finished = spans.get_finished_spans()
    (wait,) = named(finished, "nexus.wait wait_until_done")
    assert wait.attributes is not None
    assert wait.attributes["nexus.job_id"] == job.id
    polls = [event for event in wait.events if event.name == "poll"]
    assert len(polls) == 3
    assert [dict(p.attributes or {}).get("error.type") for p in polls] == [
        "ServerError",
        "ServerError",
        None,
    ]
    last = dict(polls[2].attributes or {})
    assert last["nexus.overview"] == str(final.status.overview)
    assert last["nexus.items.gathered"] == final.status.items.gathered
    requests = children(finished, wait)
    assert [r.name for r in requests] == [f"GET {JOB_ROUTE}"] * 3
    assert [dict(r.attributes or {})["http.response.status_code"] for r in requests] == [
        503,
        503,
        200,
    ]
    assert all(r.kind is trace.SpanKind.CLIENT for r in requests)
    assert len(finished) == 4  # nothing else was traced


async def test_a_retried_request_is_one_span_with_a_retry_event(
    jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    nexus.inject_fault("GET", "/batch/jobs$", status=503, times=1)
    await jobs.list()
    (span,) = spans.get_finished_spans()
    assert span.name == "GET /projects/{projectId}/batch/jobs"
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.template"] == "/projects/{projectId}/batch/jobs"
    assert attributes["http.response.status_code"] == 200
    assert attributes["nexus.attempts"] == 2
    assert attributes["http.request.resend_count"] == 1
    assert attributes["server.address"] == "127.0.0.1"
    (retry,) = span.events
    assert retry.name == "retry"
    assert dict(retry.attributes or {})["nexus.retry.reason"] == "HTTP 503"
    assert dict(retry.attributes or {})["nexus.retry.attempt"] == 1
    delay: Any = dict(retry.attributes or {})["nexus.retry.delay_s"]
    assert 0 < delay <= 0.05


async def test_a_failed_request_is_an_error_span(jobs: Jobs, spans: InMemorySpanExporter) -> None:
    with pytest.raises(NotFoundError):
        await jobs.get("batchjob_00000000-0000-0000-0000-000000000000")
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "NotFoundError"
    assert dict(span.attributes or {})["http.response.status_code"] == 404


async def test_a_rate_limit_pause_is_an_event(
    jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    nexus.inject_fault("GET", "/batch/jobs$", status=429, retry_after=0.01, times=1)
    await jobs.list()
    (span,) = spans.get_finished_spans()
    assert [event.name for event in span.events] == ["rate_limit_pause", "retry"]
    assert dict(span.events[0].attributes or {})["nexus.pause_s"] == pytest.approx(0.01)


async def test_wait_all_spans_its_as_completed_with_a_poll_per_tick(
    jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    options = job_options(nexus, items=1)
    ids = [(await jobs.create(f"j{i}", options)).id for i in range(2)]
    spans.clear()
    await jobs.wait_all(ids, interval=0.05, timeout=30, raise_exception_if=None)
    finished = spans.get_finished_spans()
    (outer,) = named(finished, "nexus.wait wait_all")
    (inner,) = named(finished, "nexus.wait as_completed")
    assert inner.parent is not None
    assert outer.context is not None
    assert inner.parent.span_id == outer.context.span_id
    assert dict(outer.attributes or {})["nexus.jobs"] == 2
    polls: list[dict[str, Any]] = [
        dict(e.attributes or {}) for e in inner.events if e.name == "poll"
    ]
    assert polls
    assert polls[-1]["nexus.pending"] == 0
    assert sum(p["nexus.finished"] for p in polls) == 2
    # The shared poller serves every waiter: its requests are not the first waiter's children.
    requests = [s for s in finished if s.name.startswith("GET ")]
    assert requests
    assert all(r.parent is None for r in requests)


async def test_a_dataset_wait_is_a_span_with_polls(
    jobs: Jobs, client: AsyncClient, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    datasets = client.get_project(nexus.project_id).batch.datasets
    dataset = await datasets.create_from_items("traced", [png_data_url()])
    spans.clear()
    ready = await datasets.wait_until_done(dataset.id, interval=0.05, timeout=30)
    finished = spans.get_finished_spans()
    (wait,) = named(finished, "nexus.wait datasets.wait_until_done")
    polls = [dict(e.attributes or {}) for e in wait.events if e.name == "poll"]
    assert polls[-1]["nexus.overview"] == str(ready.status.overview)
    assert polls[-1]["nexus.item_count"] == 1
    assert len(children(finished, wait)) == len(polls)


async def test_a_log_stream_is_a_span_counting_entries_and_pages(
    jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    job = await quiet_job(jobs, nexus)
    nexus.seed_logs(job.id, 250)
    spans.clear()
    # One request at a time, so the pages are exactly the walk's (a parallel walk
    # pages its slices, and may make more requests).
    stream_of = jobs.get_all_logs(job.id, {"max_entries": 100}, concurrency=1)
    got = [entry async for entry in stream_of]
    assert len(got) == 250
    (stream,) = named(spans.get_finished_spans(), "nexus.logs get_all_logs")
    attributes = dict(stream.attributes or {})
    assert attributes["nexus.job_id"] == job.id
    assert attributes["nexus.log.entries"] == 250
    assert attributes["nexus.log.pages"] == math.ceil(250 / 100)
    assert attributes["nexus.log.resumes"] == 0


async def test_follow_logs_counts_its_resumes(
    client: AsyncClient, jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    job = await jobs.create("followed", job_options(nexus, items=1))
    await jobs.wait_until_done(job.id, interval=0.05, timeout=30, raise_exception_if=None)
    single = client.with_options(retry=ONE_ATTEMPT).get_project(nexus.project_id).batch.jobs
    nexus.inject_fault("GET", f"/jobs/{job.id}$", status=503, times=1)
    spans.clear()
    got = [entry async for entry in single.follow_logs(job.id, interval=0.05, timeout=30)]
    assert got
    (stream,) = named(spans.get_finished_spans(), "nexus.logs follow_logs")
    attributes: dict[str, Any] = dict(stream.attributes or {})
    assert attributes["nexus.log.entries"] == len(got)
    assert attributes["nexus.log.resumes"] == 1
    assert attributes["nexus.log.pages"] >= 1


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def test_metrics_count_requests_retries_pauses_waits_and_entries(
    jobs: Jobs, nexus: LocalNexus, reader: InMemoryMetricReader
) -> None:
    def total(name: str, **where: object) -> float:
        points = _points(reader, name)
        return float(
            sum(
                p.value if hasattr(p, "value") else p.count
                for p in points
                if all(dict(p.attributes).get(k) == v for k, v in where.items())
            )
        )

    route = "/projects/{projectId}/batch/jobs"
    before = {
        "requests": total("nexus.client.requests", **{"url.template": route}),
        "retries": total("nexus.client.retries", **{"nexus.retry.reason": "HTTP 429"}),
        "pauses": total("nexus.client.rate_limit_pauses"),
        "waits": total("nexus.client.wait.duration", **{"nexus.wait.kind": "wait_until_done"}),
        "entries": total("nexus.client.log.entries"),
    }
    nexus.inject_fault("GET", "/batch/jobs$", status=429, retry_after=0.01, times=1)
    await jobs.list()
    job = await quiet_job(jobs, nexus)
    nexus.seed_logs(job.id, 7)
    assert len([e async for e in jobs.get_all_logs(job.id)]) == 7
    await jobs.cancel(job.id)
    await jobs.wait_until_done(job.id, interval=0.05, timeout=30, raise_exception_if=None)
    assert total("nexus.client.requests", **{"url.template": route}) == before["requests"] + 2
    assert total("nexus.client.retries", **{"nexus.retry.reason": "HTTP 429"}) == (
        before["retries"] + 1
    )
    assert total("nexus.client.rate_limit_pauses") == before["pauses"] + 1
    kind = {"nexus.wait.kind": "wait_until_done"}
    assert total("nexus.client.wait.duration", **kind) == before["waits"] + 1
    assert total("nexus.client.log.entries") == before["entries"] + 7


async def test_no_attribute_holds_a_secret_or_a_query(
    client: AsyncClient, jobs: Jobs, nexus: LocalNexus, spans: InMemorySpanExporter
) -> None:
    # A dataset upload goes to a pre-signed URL whose query is a credential.
    datasets = client.get_project(nexus.project_id).batch.datasets
    dataset = await datasets.create_from_items("secret-scan", [png_data_url()])
    await datasets.wait_until_done(dataset.id, interval=0.05, timeout=30)
    hooks = client.get_project(nexus.project_id).batch.webhooks
    secret_hook = await hooks.create("scan", {"endpoint": "https://example.test/hook"})
    assert secret_hook.secret
    nexus.inject_fault("GET", "/batch/jobs$", status=503, times=1)
    await jobs.list({"limit": 3})
    finished = spans.get_finished_spans()
    assert any(s.name == "PUT" for s in finished), "the upload should be traced"
    texts = list(all_texts(finished))
    key = nexus.secret_key
    for text in texts:
        assert key[:12] not in text
        assert key[-12:] not in text
        assert secret_hook.secret[:12] not in text
        assert "?" not in text, text  # no query of any URL (the upload's signature)


def test_nothing_of_opentelemetry_is_imported_with_the_package() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import nexus_async"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert "nexus_async" in imported
    assert not [name for name in imported if name.startswith("opentelemetry")]
    # Nor asyncio (about 10 ms): the loop check looks the running backend up instead.
    assert "asyncio" not in imported


async def test_without_opentelemetry_requests_work_untraced(
    jobs: Jobs, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_otel, "_telemetry", None)
    monkeypatch.setattr(_otel, "_unavailable", False)
    for name in [m for m in sys.modules if m.startswith("opentelemetry")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    assert (await jobs.list()).data == []
    assert _otel.get() is None
    assert spans.get_finished_spans() == ()
