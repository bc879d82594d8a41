"""OpenTelemetry's providers configured late: nothing recorded before, everything after.

OpenTelemetry takes one global provider per process, and the telemetry tests set one,
so each test here runs in a fresh interpreter (on the test's anyio backend) against
the local server.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = r"""
import json, sys
import anyio
from nexus_async import AsyncClient, _otel
from nexus_async.server import LocalNexus

spans_opened = []
original = _otel._Telemetry.request_span

def counting(self, *args, **kwargs):
    spans_opened.append(args[0])
    return original(self, *args, **kwargs)

_otel._Telemetry.request_span = counting


async def main():
    report = {}
    async with LocalNexus() as nexus:
        async with AsyncClient(nexus.secret_key, base_url=nexus.base_url) as client:
            jobs = client.get_project(nexus.project_id).batch.jobs
            await jobs.list()
            await jobs.list()
            report["untraced"] = _otel.get() is None
            report["spans_before"] = len(spans_opened)

            from opentelemetry import metrics, trace
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )

            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            which = sys.argv[2]
            if which in ("traces", "both"):
                trace.set_tracer_provider(provider)
            reader = InMemoryMetricReader()
            if which in ("metrics", "both"):
                metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            await jobs.list()
            report["spans"] = [span.name for span in exporter.get_finished_spans()]
            data = reader.get_metrics_data()
            report["requests"] = sum(
                point.value
                for resource in (data.resource_metrics if data else [])
                for scope in resource.scope_metrics
                for metric in scope.metrics
                if metric.name == "nexus.client.requests"
                for point in metric.data.data_points
            )
    print(json.dumps(report))


anyio.run(main, backend=sys.argv[1])
"""


def _run(backend: str, which: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, backend, which],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("which", ["both", "traces", "metrics"])
def test_providers_configured_after_the_first_calls_see_the_next_ones(
    anyio_backend: str, which: str
) -> None:
    report = _run(anyio_backend, which)
    # With the API's default providers, calls open no span at all.
    assert report["untraced"] is True
    assert report["spans_before"] == 0
    # The call after the providers were set is traced and counted.
    traced = ["GET /projects/{projectId}/batch/jobs"]
    assert report["spans"] == (traced if which != "metrics" else [])
    assert report["requests"] == (1 if which != "traces" else 0)
