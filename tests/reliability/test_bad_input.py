"""Bad input, property-based: it works, or fails with `ValidationError` before any request.

Hypothesis generates IDs (wrong types, other prefixes, `../`, `%2F`, `?`, `#`,
whitespace, unicode, very long strings), options, filters, pagination, webhook specs,
dataset items and wait arguments. A fake API behind `httpx.MockTransport` records
every request and answers each route with valid JSON. For every input, either
`ValidationError` is raised and nothing was sent, or the call went through and every
request went to exactly the intended path (compared on the raw, still-encoded path)
with exactly the intended query or body.
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from nexus_async import AsyncClient, Batch, LogLevel, errors

from ..sdk import wire, wire_batch

KEY = "sk-bad-input-0123456789"
PROJECT = "proj_0123456789abcdef"
UPLOAD_URL = "https://storage.test/bucket/upload?X-Goog-Signature=abc"

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
MANY = settings(max_examples=150, deadline=None, derandomize=True)


class FakeApi:
    """Answers every route of the batch API with valid JSON and records the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, request.url.path
        last = path.rsplit("/", 1)[-1]
        named = path.split("/batch/", 1)[-1].split("/")  # the ID a request names, if any
        item_id = named[1].split(":")[0] if len(named) > 1 else last
        if request.url.host == "storage.test":
            return httpx.Response(200)
        if method == "DELETE":
            return httpx.Response(200, json={"id": last, "deleted": True})
        if "/batch/jobs" in path:
            if path.endswith("/logs"):
                return httpx.Response(200, json=wire.JOB_LOGS)
            if path.endswith("/batch/jobs") and method == "GET":
                return httpx.Response(200, json=wire.page(wire.JOB))
            if method == "POST":
                return httpx.Response(200, json=wire.JOB)
            return httpx.Response(200, json=wire.job(id=last))
        if "/batch/datasets" in path:
            dataset = wire_batch.dataset("Uploaded")
            dataset["status"]["source"]["uploadUrl"]["url"] = UPLOAD_URL
            if path.endswith("/batch/datasets") and method == "GET":
                return httpx.Response(200, json=wire_batch.page(dataset))
            return httpx.Response(200, json={**dataset, "id": item_id})  # about the one asked
        if "/batch/webhooks" in path:
            if path.endswith(":test"):
                return httpx.Response(200, json=wire_batch.WEBHOOK_TEST)
            if path.endswith("/batch/webhooks") and method == "GET":
                return httpx.Response(200, json=wire_batch.page(wire_batch.WEBHOOK))
            return httpx.Response(200, json={**wire_batch.WEBHOOK, "id": item_id})
        return httpx.Response(404, json={"message": f"no route {method} {path}"})

    def client(self) -> AsyncClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return AsyncClient(KEY, base_url="http://nexus.test", http_client=http)


def raw_path(request: httpx.Request) -> str:
    """The path exactly as sent: still percent-encoded, without the query."""
    return request.url.raw_path.split(b"?", 1)[0].decode("ascii")


async def outcome(call: Callable[[], Awaitable[object]], api: FakeApi) -> bool:
    """Run `call`; True if it went through, False if it raised `ValidationError` unsent."""
    try:
        await call()
    except errors.ValidationError:
        assert api.requests == [], "a request was sent before the input was rejected"
        event("rejected")
        return False
    event("accepted")
    return True


async def consume(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


# ------------------------------------------------------------------------ strategies

SAFE = string.ascii_letters + string.digits + "_-."
TRICKS = [
    "../",
    "..",
    "/..",
    "/",
    "%2F",
    "%2f",
    "%2e%2e",
    "%",
    "?",
    "?x=1",
    "#",
    "#frag",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\x00",
    ":",
    ":test",
    ";",
    "&",
    "=",
    "\\",
    "é",
    "\u202e",
    "\u2044",
    "😀",
    "\uff0e",  # a full-width full stop
    "/logs",
]
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def ids(prefix: str) -> st.SearchStrategy[Any]:
    """About half plausible IDs, half anything that could go wrong."""
    plausible = st.text(SAFE, min_size=1, max_size=40).map(lambda b: prefix + b)
    wrong = st.one_of(
        st.builds(
            lambda a, trick, b: prefix + a + trick + b,
            st.text(SAFE, max_size=8),
            st.sampled_from(TRICKS),
            st.text(SAFE, max_size=8),
        ),
        st.builds(lambda b: prefix + b, st.text(max_size=30)),
        st.text(max_size=30),
        st.sampled_from(["proj_", "batchjob_", "dataset_", "webhook_", "deploy_"]).map(
            lambda p: p + "abc"
        ),
        st.integers(150, 600).map(lambda n: prefix + "a" * n),
        st.just(prefix),
        WRONG_TYPES,
    )
    # one_of would flatten `wrong` and weigh each of its branches like `plausible`.
    return st.integers(0, 4).flatmap(lambda n: plausible if n < 2 else wrong)


def times() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-(10**3), 10**14),
        st.integers(),
        st.floats(),
        st.text(string.digits, max_size=5),
        st.booleans(),
        st.none(),
    )


# ------------------------------------------------------------------------- IDs


JOB_CALLS: dict[str, tuple[str, Callable[[Batch, Any], Awaitable[object]]]] = {
    "get": ("", lambda b, i: b.jobs.get(i)),
    "cancel": ("", lambda b, i: b.jobs.cancel(i)),
    "delete": ("", lambda b, i: b.jobs.delete(i)),
    "get_logs": ("/logs", lambda b, i: b.jobs.get_logs(i)),
    "get_all_logs": ("/logs", lambda b, i: consume(b.jobs.get_all_logs(i))),
    "wait_until_done": ("", lambda b, i: b.jobs.wait_until_done(i, interval=0.01, timeout=5)),
    "watch": ("", lambda b, i: consume(b.jobs.watch(i, interval=0.01, timeout=5))),
    "follow_logs": ("/logs", lambda b, i: consume(b.jobs.follow_logs(i, interval=0.01))),
    "wait_all": ("", lambda b, i: b.jobs.wait_all([i], interval=0.01, timeout=5)),
}


@pytest.mark.parametrize("name", list(JOB_CALLS))
@SETTINGS
@given(job_id=ids("batchjob_"))
async def test_job_ids(name: str, job_id: Any) -> None:
    suffix, call = JOB_CALLS[name]
    api = FakeApi()
    async with api.client() as client:
        batch = client.get_project(PROJECT).batch
        if not await outcome(lambda: call(batch, job_id), api):
            return
    base = f"/projects/{PROJECT}/batch/jobs/{job_id}"
    for request in api.requests:
        # follow_logs reads the job, then its logs; everything else one path.
        allowed = {base, base + suffix}
        assert raw_path(request) in allowed, f"{request.method} {request.url} for {job_id!r}"


DATASET_CALLS: dict[str, Callable[[Batch, Any], Awaitable[object]]] = {
    "get": lambda b, i: b.datasets.get(i),
    "delete": lambda b, i: b.datasets.delete(i),
    "wait_until_done": lambda b, i: b.datasets.wait_until_done(i, interval=0.01, timeout=5),
}
WEBHOOK_CALLS: dict[str, tuple[str, Callable[[Batch, Any], Awaitable[object]]]] = {
    "get": ("", lambda b, i: b.webhooks.get(i)),
    "delete": ("", lambda b, i: b.webhooks.delete(i)),
    "update": ("", lambda b, i: b.webhooks.update(i, {"endpoint": "https://hook.test/x"})),
    "update_secret": (
        "/secret",
        lambda b, i: b.webhooks.update_secret(i, base64.b64encode(b"k" * 32).decode()),
    ),
    "test": (":test", lambda b, i: b.webhooks.test(i)),
}


@pytest.mark.parametrize("name", list(DATASET_CALLS))
@SETTINGS
@given(dataset_id=ids("dataset_"))
async def test_dataset_ids(name: str, dataset_id: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        batch = client.get_project(PROJECT).batch
        if not await outcome(lambda: DATASET_CALLS[name](batch, dataset_id), api):
            return
    assert {raw_path(r) for r in api.requests} == {
        f"/projects/{PROJECT}/batch/datasets/{dataset_id}"
    }


@pytest.mark.parametrize("name", list(WEBHOOK_CALLS))
@SETTINGS
@given(webhook_id=ids("webhook_"))
async def test_webhook_ids(name: str, webhook_id: Any) -> None:
    suffix, call = WEBHOOK_CALLS[name]
    api = FakeApi()
    async with api.client() as client:
        batch = client.get_project(PROJECT).batch
        if not await outcome(lambda: call(batch, webhook_id), api):
            return
    assert [raw_path(r) for r in api.requests] == [
        f"/projects/{PROJECT}/batch/webhooks/{webhook_id}{suffix}"
    ]


@MANY
@given(project_id=ids("proj_"))
async def test_project_ids(project_id: Any) -> None:
    api = FakeApi()
    async with api.client() as client:

        async def call() -> object:
            return await client.get_project(project_id).batch.jobs.list()

        if not await outcome(call, api):
            return
    expected = project_id if project_id.startswith("proj_") else "proj_" + project_id
    assert [raw_path(r) for r in api.requests] == [f"/projects/{expected}/batch/jobs"]


# ------------------------------------------------------------ options and filters


OPTION_KEYS = [
    "dataset_id",
    "webhook_id",
    "deployment_id",
    "artifact_id",
    "deployment_metadata",
    "start_at_time",
    "stop_at_time",
]
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "dataset_id": ids("dataset_"),
    "webhook_id": ids("webhook_"),
    "deployment_id": ids("deploy_"),
    "artifact_id": ids("artifact_"),
    "deployment_metadata": st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.text(max_size=5), WRONG_TYPES),
                "replicas": st.one_of(st.integers(-2, 5), WRONG_TYPES),
                "region": st.text(max_size=5),
                "options": st.one_of(
                    st.fixed_dictionaries({}, optional={"evaluation_threshold": st.floats(0, 1)}),
                    WRONG_TYPES,
                ),
                "cpu": st.integers(),
            },
        ),
        WRONG_TYPES,
    ),
    "start_at_time": times(),
    "stop_at_time": times(),
}


@st.composite
def job_options(draw: st.DrawFn) -> Any:
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(WRONG_TYPES)
    if shape <= 4:  # anything goes
        keys = draw(st.lists(st.sampled_from(OPTION_KEYS), unique=True))
        return {key: draw(VALUES[key]) for key in keys}
    # Well-formed, then perhaps one field spoiled or one unknown key added.
    options: dict[Any, Any] = {
        "dataset_id": "dataset_" + draw(st.text(SAFE, min_size=1, max_size=20)),
        "webhook_id": "webhook_" + draw(st.text(SAFE, min_size=1, max_size=20)),
    }
    if draw(st.booleans()):
        options["deployment_id"] = "deploy_" + draw(st.text(SAFE, min_size=1, max_size=20))
    else:
        options["artifact_id"] = "artifact_1"
        options["deployment_metadata"] = draw(
            st.one_of(
                st.none(), st.fixed_dictionaries({}, optional={"replicas": st.integers(1, 3)})
            )
        )
    if draw(st.booleans()):
        start = draw(st.integers(0, 10**13))
        options["start_at_time"] = start
        options["stop_at_time"] = start + draw(st.integers(1, 10**9))
    spoil = draw(st.integers(0, 3))
    if spoil == 1:
        key = draw(st.sampled_from(OPTION_KEYS))
        options[key] = draw(VALUES[key])
    elif spoil == 2:
        options[draw(st.text(max_size=10))] = 1
    return options


NAMES = st.one_of(
    st.text(min_size=1, max_size=20),
    st.one_of(st.just(""), st.text(min_size=990, max_size=1010), WRONG_TYPES),
)


@MANY
@given(name=NAMES, options=job_options())
async def test_job_options(name: Any, options: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        if not await outcome(lambda: jobs.create(name, options), api):
            return
    (request,) = api.requests
    assert (request.method, raw_path(request)) == ("POST", f"/projects/{PROJECT}/batch/jobs")
    assert request.url.query == b""
    sent = json.loads(request.content)
    assert sent["name"] == name
    spec = sent["spec"]
    assert spec["datasetId"] == options["dataset_id"]
    assert spec["resultDelivery"] == {
        "destinations": [{"kind": "Webhook", "webhookId": options["webhook_id"]}]
    }
    if options.get("deployment_id") is not None:
        assert spec["deployment"] == {
            "kind": "ExistingDeployment",
            "deploymentId": options["deployment_id"],
        }
    else:
        assert spec["deployment"]["kind"] == "NewEphemeralDeployment"
        assert spec["deployment"]["template"]["artifactId"] == options["artifact_id"]
    for key, wire_key in (("start_at_time", "startAtTime"), ("stop_at_time", "stopAtTime")):
        assert spec.get(wire_key) == options.get(key)


FILTER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "before_time": times(),
    "after_time": times(),
    "min_level": st.one_of(
        st.sampled_from([*LogLevel, "Info", "Error", "info", "Fatal", ""]), WRONG_TYPES
    ),
    "max_entries": st.one_of(st.integers(-5, 1005), WRONG_TYPES),
}
FILTER_WIRE = {
    "before_time": "beforeTime",
    "after_time": "afterTime",
    "min_level": "minLevel",
    "max_entries": "maxEntries",
}


@st.composite
def logs_filters(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(WRONG_TYPES)
    keys = draw(st.lists(st.sampled_from(list(FILTER_VALUES)), unique=True))
    flt = {key: draw(FILTER_VALUES[key]) for key in keys}
    if draw(st.integers(0, 9)) == 0:
        flt[draw(st.sampled_from(["beforeTime", "level", "limit", ""]))] = 1
    return flt


@MANY
@given(flt=logs_filters())
async def test_logs_filters(flt: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        if not await outcome(lambda: jobs.get_logs("batchjob_1", flt), api):
            return
    (request,) = api.requests
    assert raw_path(request) == f"/projects/{PROJECT}/batch/jobs/batchjob_1/logs"
    expected = {
        FILTER_WIRE[key]: str(value) for key, value in (flt or {}).items() if value is not None
    }
    assert dict(request.url.params.multi_items()) == expected
    assert len(request.url.params.multi_items()) == len(expected)


@st.composite
def paginations(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(WRONG_TYPES)
    page: dict[Any, Any] = {}
    if draw(st.booleans()):
        page["limit"] = draw(st.one_of(st.integers(-5, 1005), WRONG_TYPES))
    if draw(st.booleans()):
        page["page"] = draw(
            st.one_of(
                st.text(max_size=40),
                st.builds(lambda t: "abc" + t + "def", st.sampled_from([*TRICKS, "&limit=5"])),
                st.text(min_size=4090, max_size=4100),
                WRONG_TYPES,
            )
        )
    if draw(st.integers(0, 9)) == 0:
        page[draw(st.sampled_from(["size", "offset", "nextPage"]))] = 1
    return page


@pytest.mark.parametrize("resource", ["jobs", "datasets", "webhooks"])
@MANY
@given(pagination=paginations())
async def test_pagination(resource: str, pagination: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        batch = client.get_project(PROJECT).batch
        lister = getattr(batch, resource)
        if not await outcome(lambda: lister.list(pagination), api):
            return
    (request,) = api.requests
    assert raw_path(request) == f"/projects/{PROJECT}/batch/{resource}"
    expected = {k: str(v) for k, v in (pagination or {}).items() if v is not None}
    assert dict(request.url.params.multi_items()) == expected
    assert len(request.url.params.multi_items()) == len(expected)


# ------------------------------------------------------------ webhooks and datasets


def secrets() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.binary(min_size=24, max_size=64).map(lambda b: base64.b64encode(b).decode()),
        st.integers(0, 80).map(lambda n: base64.b64encode(b"s" * n).decode()),
        st.integers(20, 70).map(lambda n: "whsec_" + base64.b64encode(b"w" * n).decode()),
        st.text(max_size=60),
        WRONG_TYPES,
    )


ENDPOINTS = st.one_of(
    st.sampled_from(
        [
            "https://hook.test/results",
            "http://127.0.0.1:8080/x?y=1",
            "https://hook.test:99999/",
            "ftp://hook.test/",
            "https:///no-host",
            "https://hook.test/a b",
            "https://hook.test/\n",
            "",
            "hook.test",
        ]
    ),
    st.builds(lambda t: "https://hook.test/" + t, st.text(max_size=20)),
    WRONG_TYPES,
)


@st.composite
def webhook_specs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(WRONG_TYPES)
    spec: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        good = st.builds(lambda t: "https://hook.test/" + t, st.text(SAFE, max_size=10))
        spec["endpoint"] = draw(st.one_of(good, ENDPOINTS))
    if draw(st.booleans()):
        spec["retries"] = draw(
            st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "max_retries": st.one_of(st.integers(-2, 30), WRONG_TYPES),
                        "max_retry_delay": st.one_of(st.integers(-2, 10**6), WRONG_TYPES),
                        "max_backoff_ms": st.integers(-2, 10**6),
                    },
                ),
                WRONG_TYPES,
            )
        )
    if draw(st.booleans()):
        spec["secret"] = draw(st.one_of(secrets().map(lambda s: {"contents": s}), secrets()))
    return spec


@MANY
@given(spec=webhook_specs())
async def test_webhook_specs(spec: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        webhooks = client.get_project(PROJECT).batch.webhooks
        if not await outcome(lambda: webhooks.create("hook", spec), api):
            return
    (request,) = api.requests
    assert raw_path(request) == f"/projects/{PROJECT}/batch/webhooks"
    sent = json.loads(request.content)["spec"]
    assert sent["endpoint"] == spec["endpoint"]
    secret = base64.b64decode(sent["secret"]["contents"], validate=True)
    assert 24 <= len(secret) <= 64
    retries = spec.get("retries") or {}
    assert sent["retries"]["maxRetries"] == retries.get("max_retries", 3)
    assert sent["retries"]["maxBackoffMs"] == retries.get(
        "max_retry_delay", retries.get("max_backoff_ms", 15000)
    )


GOOD_ITEMS = st.one_of(
    st.builds(lambda t: "https://cdn.test/" + t, st.text(SAFE, max_size=10)),
    st.fixed_dictionaries(
        {"url": st.builds(lambda t: "https://cdn.test/" + t, st.text(SAFE, max_size=5))},
        optional={"kind": st.just("Image")},
    ),
)
ITEMS = st.one_of(
    st.builds(lambda t: "https://cdn.test/" + t, st.text(max_size=10)),
    st.sampled_from(["", "   ", "https://cdn.test/a b", "data:image/png;base64,AAAA"]),
    st.fixed_dictionaries(
        {"url": st.builds(lambda t: "https://cdn.test/" + t, st.text(SAFE, max_size=5))},
        optional={"kind": st.sampled_from(["Image", "Video", 3])},
    ),
    st.dictionaries(st.sampled_from(["url", "kind", "href"]), st.text(max_size=5), max_size=3),
    WRONG_TYPES,
)


@SETTINGS
@given(
    items=st.one_of(
        st.lists(GOOD_ITEMS, min_size=1, max_size=5),
        st.one_of(st.lists(ITEMS, max_size=5), WRONG_TYPES, st.text(max_size=5)),
    )
)
async def test_dataset_items(items: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        datasets = client.get_project(PROJECT).batch.datasets
        if not await outcome(lambda: datasets.create_from_items("items", items), api):
            return
    create, upload = api.requests
    assert raw_path(create) == f"/projects/{PROJECT}/batch/datasets"
    assert str(upload.url) == UPLOAD_URL
    uploaded = [json.loads(line) for line in upload.content.decode().splitlines()]
    expected = [{"kind": "Image", "url": i} if isinstance(i, str) else i for i in items]
    assert [u["url"] for u in uploaded] == [e["url"] for e in expected]
    assert all(u["kind"] == "Image" for u in uploaded)


@SETTINGS
@given(
    interval=st.one_of(st.floats(), st.integers(-3, 3), WRONG_TYPES),
    timeout=st.one_of(st.floats(), st.integers(-3, 3), WRONG_TYPES),
)
async def test_wait_arguments(interval: Any, timeout: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs

        async def call() -> object:
            try:
                return await jobs.wait_until_done("batchjob_1", interval=interval, timeout=timeout)
            except errors.WaitTimeoutError:  # a legal but tiny timeout
                return None

        if not await outcome(call, api):
            return
    assert {raw_path(r) for r in api.requests} <= {f"/projects/{PROJECT}/batch/jobs/batchjob_1"}


# ------------------------------------------------------------ regressions, deterministic


@pytest.mark.parametrize("job_ids", [None, 5, "batchjob_1", [["batchjob_1"]], [{"id": 1}]])
async def test_wait_all_and_as_completed_reject_bad_id_collections(job_ids: Any) -> None:
    """`wait_all` used to hash the IDs before checking them (a raw TypeError)."""
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        with pytest.raises(errors.ValidationError, match="job"):
            await jobs.wait_all(job_ids)
        with pytest.raises(errors.ValidationError, match="job"):
            jobs.as_completed(job_ids)
    assert api.requests == []


@pytest.mark.parametrize("level", [[], {}, ["Info"], 3, b"Info"])
async def test_an_unhashable_min_level_is_a_validation_error(level: Any) -> None:
    """`min_level` used to be looked up in a set first (a raw TypeError for a list)."""
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        with pytest.raises(errors.ValidationError, match="min_level"):
            await jobs.get_logs("batchjob_1", {"min_level": level})
    assert api.requests == []


async def test_an_answer_about_another_job_is_a_decode_error_for_waiters() -> None:
    """A GET answered with another job's JSON used to end `wait_all` in a raw KeyError."""
    script = FakeApi()

    def other_job(request: httpx.Request) -> httpx.Response:
        script.requests.append(request)
        return httpx.Response(200, json=wire.job(id="batchjob_someone_else"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(other_job))
    async with AsyncClient(KEY, base_url="http://nexus.test", http_client=http) as client:
        jobs = client.get_project(PROJECT).batch.jobs
        with pytest.raises(errors.ResponseDecodeError, match="batchjob_someone_else"):
            await jobs.wait_all(["batchjob_mine"], interval=0.01, timeout=5)
    await http.aclose()


def _noop(_: object) -> None:
    return None


async def _anoop(_: object) -> None:
    return None


CALLBACKS = st.one_of(st.none(), st.sampled_from([_noop, _anoop]), WRONG_TYPES)


@SETTINGS
@given(
    which=st.sampled_from(["wait_until_done", "as_completed", "wait_all"]),
    on_update=CALLBACKS,
    on_progress=CALLBACKS,
    totals=st.one_of(
        st.none(),
        st.dictionaries(st.just("batchjob_1"), st.one_of(st.integers(0, 10), WRONG_TYPES)),
        WRONG_TYPES,
    ),
)
async def test_callbacks_and_totals(
    which: str, on_update: Any, on_progress: Any, totals: Any
) -> None:
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs

        async def call() -> object:
            if which == "wait_until_done":
                return await jobs.wait_until_done("batchjob_1", interval=0.01, on_update=on_update)
            if which == "wait_all":
                return await jobs.wait_all(
                    ["batchjob_1"],
                    interval=0.01,
                    on_update=on_update,
                    on_progress=on_progress,
                    totals=totals,
                )
            async with jobs.as_completed(
                ["batchjob_1"],
                interval=0.01,
                on_update=on_update,
                on_progress=on_progress,
                totals=totals,
            ) as finished:
                return [job async for job in finished]

        await outcome(call, api)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"on_update": True}, "on_update"),
        ({"on_progress": "print"}, "on_progress"),
        ({"totals": [("batchjob_1", 3)]}, "totals"),
        ({"totals": {"batchjob_1": "3"}}, "totals"),
        ({"totals": {"job/../1": 3}}, "totals"),
    ],
)
async def test_bad_callbacks_and_totals_fail_before_anything_is_sent(
    kwargs: dict[str, Any], match: str
) -> None:
    """A non-callable callback or a bad `totals` used to fail later, as a raw TypeError."""
    api = FakeApi()
    async with api.client() as client:
        jobs = client.get_project(PROJECT).batch.jobs
        with pytest.raises(errors.ValidationError, match=match):
            await jobs.wait_all(["batchjob_1"], **kwargs)
        if "on_update" in kwargs:
            with pytest.raises(errors.ValidationError, match=match):
                await jobs.wait_until_done("batchjob_1", **kwargs)
    assert api.requests == []


@MANY
@given(spec=webhook_specs())
async def test_webhook_updates(spec: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        webhooks = client.get_project(PROJECT).batch.webhooks
        if not await outcome(lambda: webhooks.update("webhook_1", spec), api):
            return
    (request,) = api.requests
    assert (request.method, raw_path(request)) == (
        "PATCH",
        f"/projects/{PROJECT}/batch/webhooks/webhook_1",
    )
    sent = json.loads(request.content)["spec"]
    assert set(sent) == set(spec)
    assert "secret" not in sent
    if "endpoint" in spec:
        assert sent["endpoint"] == spec["endpoint"]


@pytest.mark.parametrize("resource", ["jobs", "datasets", "webhooks"])
@SETTINGS
@given(page_size=st.one_of(st.integers(-5, 1005), WRONG_TYPES))
async def test_iter_page_sizes(resource: str, page_size: Any) -> None:
    api = FakeApi()
    async with api.client() as client:
        lister = getattr(client.get_project(PROJECT).batch, resource)
        if not await outcome(lambda: consume(lister.iter(page_size=page_size)), api):
            return
    (request,) = api.requests
    assert raw_path(request) == f"/projects/{PROJECT}/batch/{resource}"
    assert dict(request.url.params) == ({} if page_size is None else {"limit": str(page_size)})


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
        (b'{"kind": "Image", "url": ' + b"[" * 100_000, "nested too deep"),
        (b'{"kind": "Image", "url": "https://a.test/1.png", "n": 1' + b"0" * 5000 + b"}", "JSON"),
    ],
    ids=["deep", "deep-unclosed", "huge-int"],
)
async def test_a_hostile_ndjson_line_is_a_dataset_file_error(
    tmp_path: Path, line: bytes, match: str
) -> None:
    """A line nested 100,000 deep used to raise a raw RecursionError out of the checker."""
    good = b'{"kind": "Image", "url": "https://a.test/0.png"}\n'
    path = tmp_path / "hostile.ndjson"
    path.write_bytes(good + line + b"\n" + good)
    api = FakeApi()
    async with api.client() as client:
        datasets = client.get_project(PROJECT).batch.datasets
        with pytest.raises(errors.DatasetFileError, match=match) as info:
            await datasets.create("hostile", path)
    assert info.value.line == 2
    assert api.requests == []
