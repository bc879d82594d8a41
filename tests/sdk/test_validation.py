"""Bad input fails with `ValidationError` naming the argument, before any request is sent."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import nexus_async
from nexus_async import (
    AsyncClient,
    Backoff,
    JobOptions,
    Jobs,
    LogsFilter,
    Pagination,
    RetryPolicy,
    ValidationError,
)

from .mock import PROJECT, Script

GOOD = {"dataset_id": "dataset_1", "webhook_id": "webhook_1", "deployment_id": "deploy_1"}

BAD_IDS = [
    "",
    "batchjob_",
    "job_123",
    "batchjob_../../workspace",
    "batchjob_a/b",
    "batchjob_a?x=1",
    "batchjob_a#frag",
    "batchjob_a%2Fb",
    "batchjob_a b",
    "batchjob_a\n",
    "batchjob_a:test",
    "batchjob_..",
    "batchjob_" + "x" * 500,
    "batchjob_é",
    None,
    42,
]


def options(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {**GOOD, **changes}
    return {k: v for k, v in data.items() if v is not None}


BAD_OPTIONS: list[tuple[Any, str]] = [
    (options(dataset_id=None), "dataset_id"),
    (options(webhook_id=None), "webhook_id"),
    (options(deployment_id=None), "exactly one of `deployment_id` or `artifact_id`"),
    (options(artifact_id="artifact_1"), "exactly one of"),
    (options(dataset_id="dataset_../x"), "dataset_id"),
    (options(webhook_id="deploy_1"), "webhook_id"),
    (options(deployment_id="deploy_a/b"), "deployment_id"),
    (options(start_at_time=10, stop_at_time=10), "stop_at_time"),
    (options(start_at_time=20, stop_at_time=10), "stop_at_time"),
    (options(start_at_time=-1), "start_at_time"),
    (options(stop_at_time="tomorrow"), "stop_at_time"),
    (options(start_at_time=True), "start_at_time"),
    (options(webhookId="webhook_1"), "unknown keys"),
    (options(deployment_metadata={"replicas": 2}), "deployment_metadata"),
    (
        options(deployment_id=None, artifact_id="artifact_1", deployment_metadata={"cpu": 1}),
        "unknown keys",
    ),
    (
        options(deployment_id=None, artifact_id="artifact_1", deployment_metadata={"replicas": 0}),
        "replicas",
    ),
    ("dataset_1", "must be a dict"),
    (None, "must be a dict"),
]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def jobs(script: Script) -> Jobs:
    return script.client().get_project(PROJECT).batch.jobs


async def _expect_invalid(call: Callable[[], Awaitable[Any]], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        await call()


@pytest.mark.parametrize("job_id", BAD_IDS)
@pytest.mark.parametrize("method", ["get", "cancel", "delete", "get_logs", "wait_until_done"])
async def test_bad_job_ids(jobs: Jobs, script: Script, method: str, job_id: Any) -> None:
    await _expect_invalid(lambda: getattr(jobs, method)(job_id), "job_id")
    assert script.requests == []


@pytest.mark.parametrize("job_id", BAD_IDS[:4])
def test_bad_job_ids_for_get_all_logs_fail_at_the_call(jobs: Jobs, job_id: Any) -> None:
    with pytest.raises(ValidationError, match="job_id"):
        jobs.get_all_logs(job_id)


@pytest.mark.parametrize(("job_options", "match"), BAD_OPTIONS)
async def test_bad_job_options(jobs: Jobs, script: Script, job_options: Any, match: str) -> None:
    await _expect_invalid(lambda: jobs.create("job", job_options), match)
    assert script.requests == []


@pytest.mark.parametrize("name", ["", None, 5, "x" * 1001])
async def test_bad_job_name(jobs: Jobs, script: Script, name: Any) -> None:
    await _expect_invalid(lambda: jobs.create(name, GOOD), "name")
    assert script.requests == []


@pytest.mark.parametrize(
    ("pagination", "match"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": 5.0}, "limit"),
        ({"page": ""}, "page"),
        ({"page": 12}, "page"),
        ({"size": 10}, "unknown keys"),
        ([("limit", 1)], "must be a dict"),
    ],
)
async def test_bad_pagination(jobs: Jobs, script: Script, pagination: Any, match: str) -> None:
    await _expect_invalid(lambda: jobs.list(pagination), match)
    assert script.requests == []


@pytest.mark.parametrize(
    ("logs_filter", "match"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"max_entries": 1001}, "max_entries"),
        ({"min_level": "Fatal"}, "min_level"),
        ({"before_time": "now"}, "before_time"),
        ({"after_time": -5}, "after_time"),
        ({"after_time": 10, "before_time": 10}, "after_time"),
        ({"beforeTime": 10}, "unknown keys"),
    ],
)
async def test_bad_logs_filter(jobs: Jobs, script: Script, logs_filter: Any, match: str) -> None:
    job_id = "batchjob_1"
    await _expect_invalid(lambda: jobs.get_logs(job_id, logs_filter), match)
    with pytest.raises(ValidationError, match=match):
        jobs.get_all_logs(job_id, logs_filter)
    assert script.requests == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": -1.0}, "interval"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -3}, "timeout"),
    ],
)
async def test_bad_wait_arguments(
    jobs: Jobs, script: Script, kwargs: dict[str, Any], match: str
) -> None:
    await _expect_invalid(lambda: jobs.wait_until_done("batchjob_1", **kwargs), match)
    assert script.requests == []


def test_typed_forms_equal_dict_forms() -> None:
    typed = JobOptions(dataset_id="dataset_1", webhook_id="webhook_1", deployment_id="deploy_1")
    assert JobOptions.coerce(GOOD) == typed
    assert LogsFilter.coerce({"max_entries": 5}) == LogsFilter(max_entries=5)
    assert Pagination.coerce({"limit": 5, "page": "c"}).to_params() == {"limit": "5", "page": "c"}


def test_ephemeral_deployment_options_build_the_template() -> None:
    spec = JobOptions(
        dataset_id="dataset_1",
        webhook_id="webhook_1",
        artifact_id="artifact_1",
        deployment_metadata={
            "name": "tmp",
            "replicas": 2,
            "options": {"evaluation_threshold": 0.5},
        },
    ).to_spec()
    template = spec.deployment.template  # type: ignore[union-attr]
    assert template.artifact_id == "artifact_1"
    assert template.replicas == 2
    assert template.options is not None
    assert template.options.evaluation_threshold == 0.5


# ------------------------------------------------------------- constructor arguments


def _bad(value: object) -> Any:
    """A value of the wrong type, passed as typed code would never pass it."""
    return value


def _client(**kwargs: Any) -> AsyncClient:
    return AsyncClient("k", base_url="http://nexus.test", **kwargs)


BAD_CONSTRUCTIONS: list[tuple[str, Callable[[], object], str]] = [
    ("attempts 0", lambda: RetryPolicy(attempts=0), r"`attempts` must be >= 1 \(got 0\)"),
    ("attempts float", lambda: RetryPolicy(attempts=_bad(2.0)), "`attempts` must be an integer"),
    ("attempts bool", lambda: RetryPolicy(attempts=True), "`attempts` must be an integer"),
    ("total_time 0", lambda: RetryPolicy(total_time=0), r"`total_time` must be > 0 \(got 0\)"),
    (
        "total_time nan",
        lambda: RetryPolicy(total_time=math.nan),
        "`total_time` must be a finite number",
    ),
    ("total_time str", lambda: RetryPolicy(total_time=_bad("60")), "`total_time`"),
    ("max_retry_after < 0", lambda: RetryPolicy(max_retry_after=-1), "`max_retry_after`"),
    (
        "backoff dict",
        lambda: RetryPolicy(backoff=_bad({"initial": 1})),
        "`backoff` must be a Backoff",
    ),
    ("initial 0", lambda: Backoff(initial=0), r"`initial` must be > 0 \(got 0\)"),
    ("initial inf", lambda: Backoff(initial=math.inf), "`initial` must be a finite number"),
    ("maximum -1", lambda: Backoff(maximum=-1.0), "`maximum` must be > 0"),
    ("multiplier 0.5", lambda: Backoff(multiplier=0.5), r"`multiplier` must be >= 1 \(got 0.5\)"),
    ("jitter 1.5", lambda: Backoff(jitter=1.5), r"`jitter` must be <= 1 \(got 1.5\)"),
    ("jitter -0.1", lambda: Backoff(jitter=-0.1), "`jitter` must be >= 0"),
    ("timeout str", lambda: _client(timeout="abc"), r"`timeout` must be a number .*'abc'"),
    ("timeout 0", lambda: _client(timeout=0), r"`timeout` must be > 0 \(got 0\)"),
    ("timeout < 0", lambda: _client(timeout=-1.5), "`timeout` must be > 0"),
    ("timeout nan", lambda: _client(timeout=math.nan), "`timeout` must be a finite number"),
    ("timeout inf", lambda: _client(timeout=math.inf), "`timeout` must be a finite number"),
    ("timeout bool", lambda: _client(timeout=True), "`timeout` must be a number"),
    ("timeout None", lambda: _client(timeout=None), "`timeout` must be a number"),
    (
        "httpx.Timeout part 0",
        lambda: _client(timeout=httpx.Timeout(5.0, read=0)),
        r"`timeout.read` must be > 0",
    ),
    ("max_connections 0", lambda: _client(max_connections=0), "`max_connections` must be >= 1"),
    ("max_connections str", lambda: _client(max_connections="8"), "`max_connections`"),
    ("max_connections float", lambda: _client(max_connections=8.0), "`max_connections`"),
    ("retry dict", lambda: _client(retry={"attempts": 2}), "`retry` must be a RetryPolicy"),
    (
        "http_client",
        lambda: _client(http_client=object()),
        "`http_client` must be an AsyncClient or None",
    ),
]


@pytest.mark.parametrize(
    ("build", "match"),
    [row[1:] for row in BAD_CONSTRUCTIONS],
    ids=[row[0] for row in BAD_CONSTRUCTIONS],
)
def test_bad_constructor_arguments_are_validation_errors(
    build: Callable[[], object], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        build()


def test_the_issue_examples_raise_the_public_validation_error() -> None:
    for build in (
        lambda: RetryPolicy(attempts=0),
        lambda: AsyncClient("k", timeout=_bad("abc")),
        lambda: AsyncClient("k", timeout=float("nan")),
    ):
        with pytest.raises(nexus_async.ValidationError):
            build()


def test_good_constructor_arguments_are_kept() -> None:
    assert _client(timeout=2).base_url == "http://nexus.test"
    policy = RetryPolicy(attempts=1, total_time=0.5, max_retry_after=0)
    assert policy.attempts == 1
    assert Backoff(initial=1, maximum=1, multiplier=1, jitter=0).delay(5) == 1
    _client(timeout=httpx.Timeout(5.0, pool=None), max_connections=1, retry=policy)
