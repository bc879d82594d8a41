"""`batch.datasets`: request shapes, streaming upload, NDJSON validation, waiting."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import google_crc32c
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus_async import (
    AsyncClient,
    BadRequestError,
    Dataset,
    DatasetFailedError,
    DatasetFileError,
    Datasets,
    DatasetStatusOverview,
    DatasetWaitTimeoutError,
    PaginationResponse,
    ValidationError,
    WaitTimeoutError,
)
from nexus_async import _datasets as datasets_module
from nexus_async._convert import structure, unstructure
from nexus_async._http import HTTPCore, Retry

from . import wire_batch as wire
from .batch_live import POLL, live, write_ndjson
from .mock import FAST_RETRY, KEY, PROJECT, Script, body, error, ok

BASE = f"/projects/{PROJECT}/batch/datasets"
DATASET_ID = wire.DATASET["id"]


def crc(data: bytes) -> str:
    """The spec's checksum, computed independently of the SDK."""
    value: int = google_crc32c.value(data)
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def ndjson(*urls: str) -> bytes:
    return b"".join(json.dumps({"kind": "Image", "url": u}).encode() + b"\n" for u in urls)


def compact(*urls: str) -> bytes:
    """NDJSON as `create_from_items` writes it (no spaces)."""
    return b"".join(
        json.dumps({"kind": "Image", "url": u}, separators=(",", ":")).encode() + b"\n"
        for u in urls
    )


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def datasets(script: Script) -> Datasets:
    return script.client().get_project(PROJECT).batch.datasets


def test_round_trip_is_lossless() -> None:
    for data in (wire.DATASET, wire.dataset("Processed", itemCount=50)):
        assert unstructure(structure(data, Dataset)) == data
    echoed = wire.dataset()
    echoed["status"]["source"].update(sizeBytes=10, crc32c="AAAAAA==")
    assert unstructure(structure(echoed, Dataset)) == echoed
    page = wire.page(wire.DATASET, next_page="n")
    assert unstructure(structure(page, PaginationResponse[Dataset])) == page


def test_unknown_overview_is_kept_and_means_not_finished() -> None:
    dataset = structure(wire.dataset("Quarantined"), Dataset)
    assert dataset.status.overview == "Quarantined"
    assert not dataset.status.is_finished
    known = structure(wire.dataset("Uploaded"), Dataset)
    assert known.status.overview is DatasetStatusOverview.UPLOADED
    assert known.status.is_ready
    assert known.status.is_finished


def test_upload_url_is_kept_out_of_reprs() -> None:
    dataset = structure(wire.DATASET, Dataset)
    assert "X-Goog-Signature" not in repr(dataset)
    assert dataset.status.source.upload_url.url == wire.UPLOAD_URL


# ------------------------------------------------------------------------- create


async def test_create_declares_size_and_crc_then_streams_the_file(
    script: Script, datasets: Datasets, tmp_path: Path
) -> None:
    content = ndjson(*(f"https://cdn.test/{i}.png" for i in range(3))) + b"\n"  # a blank line
    path = tmp_path / "items.ndjson"
    path.write_bytes(content)
    script.replies += [ok(wire.DATASET), ok({})]

    dataset = await datasets.create("rbc", path)

    assert dataset.id == DATASET_ID
    create, upload = script.requests
    assert (create.method, create.url.path) == ("POST", BASE)
    assert body(create) == {
        "name": "rbc",
        "spec": {
            "source": {
                "kind": "UploadedNewlineDelimitedJsonFile",
                "sizeBytes": len(content),
                "crc32c": crc(content),
            }
        },
    }
    assert (upload.method, str(upload.url)) == ("PUT", wire.UPLOAD_URL)
    assert upload.content == content
    assert upload.headers["Content-Length"] == str(len(content))
    assert upload.headers["x-goog-hash"] == "crc32c=AAAAAA=="  # as the API said, verbatim
    assert upload.headers["Content-Type"] == "application/x-ndjson"
    assert "Secret-Key" not in upload.headers  # the upload URL may be another host
    assert "transfer-encoding" not in upload.headers


async def test_create_streams_a_file_of_many_chunks(
    script: Script, datasets: Datasets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets_module, "CHUNK_BYTES", 100)
    content = ndjson(*(f"https://cdn.test/{i}.png" for i in range(50)))
    path = tmp_path / "items.ndjson"
    path.write_bytes(content)
    script.replies += [ok(wire.DATASET), ok({})]

    await datasets.create("many", str(path))

    create, upload = script.requests
    assert body(create)["spec"]["source"]["crc32c"] == crc(content)
    assert upload.content == content


async def test_create_accepts_a_last_line_without_newline(
    script: Script, datasets: Datasets, tmp_path: Path
) -> None:
    content = ndjson("https://cdn.test/1.png").rstrip(b"\n")
    path = tmp_path / "items.NDJSON"
    path.write_bytes(content)
    script.replies += [ok(wire.DATASET), ok({})]
    await datasets.create("one", path)
    assert script.requests[1].content == content


async def test_a_failed_upload_deletes_the_new_dataset(
    script: Script, datasets: Datasets, tmp_path: Path
) -> None:
    path = tmp_path / "items.ndjson"
    path.write_bytes(ndjson("https://cdn.test/1.png"))
    script.replies += [
        ok(wire.DATASET),
        error(400, "crc32c does not match"),
        ok({"id": DATASET_ID, "deleted": True}),
    ]
    with pytest.raises(BadRequestError, match="crc32c does not match") as info:
        await datasets.create("rbc", path)
    assert "X-Goog-Signature" not in str(info.value)  # the signed query stays out of errors
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("POST", BASE),
        ("PUT", "/bucket/dataset_1.ndjson"),
        ("DELETE", f"{BASE}/{DATASET_ID}"),
    ]


async def test_a_put_upload_is_retried_with_the_whole_body(
    script: Script, datasets: Datasets, tmp_path: Path
) -> None:
    content = ndjson("https://cdn.test/1.png", "https://cdn.test/2.png")
    path = tmp_path / "items.ndjson"
    path.write_bytes(content)
    script.replies += [ok(wire.DATASET), error(503), ok({})]
    await datasets.create("rbc", path)
    assert [r.content for r in script.requests[1:]] == [content, content]


async def test_a_file_that_shrinks_before_the_upload_fails_and_is_cleaned_up(
    script: Script, datasets: Datasets, tmp_path: Path
) -> None:
    path = tmp_path / "items.ndjson"
    path.write_bytes(ndjson("https://cdn.test/1.png", "https://cdn.test/2.png"))

    def created(request: httpx.Request) -> httpx.Response:
        path.write_bytes(b"{}")  # someone rewrites the file after it was checked
        return ok(wire.DATASET)

    script.replies += [created, ok({"id": DATASET_ID, "deleted": True})]
    with pytest.raises(DatasetFileError, match="shrank"):
        await datasets.create("rbc", path)
    assert script.requests[-1].method == "DELETE"


BAD_LINES: list[tuple[bytes, int, str]] = [
    (b'{"kind": "Image", "url": "https://a"}\n{"kind": "Image", "url": \n', 2, "not valid JSON"),
    (b'{"kind": "Image", "url": "https://a"}\n\n{"kind": "Image"}\n', 3, "`url`"),
    (b'{"kind": "Video", "url": "https://a"}\n', 1, '`kind` must be "Image"'),
    (b'{"url": "https://a"}\n', 1, '`kind` must be "Image"'),
    (b'{"kind": "Image", "url": 42}\n', 1, "`url` must be a non-empty string"),
    (b'{"kind": "Image", "url": ""}\n', 1, "`url` must be a non-empty string"),
    (b'{"kind": "Image", "url": "https://a b"}\n', 1, "whitespace"),
    (b'["Image", "https://a"]\n', 1, "expected a JSON object"),
    (b'"https://a"\n', 1, "expected a JSON object"),
    (b'{"kind": "Image", "url": "https://a"}\n\xff\xfe\n', 2, "not UTF-8"),
    (b'{"kind": "Image", "url": "https://a"} {"kind": "Image"}\n', 1, "not valid JSON"),
]


@pytest.mark.parametrize(("content", "line", "match"), BAD_LINES)
async def test_a_bad_line_fails_with_its_number_before_anything_is_sent(
    script: Script, datasets: Datasets, tmp_path: Path, content: bytes, line: int, match: str
) -> None:
    path = tmp_path / "items.ndjson"
    path.write_bytes(content)
    with pytest.raises(DatasetFileError, match=match) as info:
        await datasets.create("rbc", path)
    assert info.value.line == line
    assert f"line {line}:" in str(info.value)
    assert isinstance(info.value, ValidationError)
    assert script.requests == []


async def test_a_bad_line_far_into_a_multi_chunk_file_is_found(
    script: Script, datasets: Datasets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets_module, "CHUNK_BYTES", 64)
    path = tmp_path / "items.ndjson"
    path.write_bytes(ndjson(*(f"https://cdn.test/{i}" for i in range(40))) + b"oops\n")
    with pytest.raises(DatasetFileError) as info:
        await datasets.create("rbc", path)
    assert info.value.line == 41
    assert script.requests == []


async def test_an_overlong_line_fails_without_buffering_it_whole(
    script: Script, datasets: Datasets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets_module, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(datasets_module, "CHUNK_BYTES", 256)
    path = tmp_path / "items.ndjson"
    path.write_bytes(ndjson("https://cdn.test/1") + b'{"url": "' + b"x" * 5000)
    with pytest.raises(DatasetFileError, match="longer than 1000 bytes") as info:
        await datasets.create("rbc", path)
    assert info.value.line == 2
    assert script.requests == []


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.ndjson", None, "does not exist"),
        ("items.json", ndjson("https://a"), "must be a .ndjson file"),
        ("items.csv", b"url\nhttps://a\n", "must be a .ndjson file"),
        ("empty.ndjson", b"", "has no items"),
        ("blank.ndjson", b"\n  \n\n", "has no items"),
    ],
)
async def test_a_bad_file_fails_before_anything_is_sent(
    script: Script,
    datasets: Datasets,
    tmp_path: Path,
    name: str,
    content: bytes | None,
    match: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetFileError, match=match) as info:
        await datasets.create("rbc", path)
    assert info.value.path == str(path)
    assert script.requests == []


async def test_a_directory_is_not_a_dataset_file(
    script: Script, datasets: Datasets, tmp_path: Path
) -> None:
    folder = tmp_path / "items.ndjson"
    folder.mkdir()
    with pytest.raises(DatasetFileError, match=r"is not a file|cannot be read"):
        await datasets.create("rbc", folder)
    assert script.requests == []


@pytest.mark.parametrize(
    ("name", "path", "match"),
    [
        ("", "x.ndjson", "`name`"),
        (None, "x.ndjson", "`name`"),
        ("ok", 42, "`dataset_path` must be a path"),
        ("ok", None, "`dataset_path` must be a path"),
        ("ok", b"x.ndjson", "`dataset_path` must be a path"),
    ],
)
async def test_bad_arguments_fail_before_anything_is_sent(
    script: Script, datasets: Datasets, name: Any, path: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        await datasets.create(name, path)
    assert script.requests == []


# ------------------------------------------------------------- create_from_items


async def test_create_from_items_uploads_the_ndjson_it_built(
    script: Script, datasets: Datasets
) -> None:
    script.replies += [ok(wire.DATASET), ok({})]
    items: list[Any] = [
        "https://cdn.test/1.png",
        {"url": "https://cdn.test/2.png"},
        {"kind": "Image", "url": "data:image/png;base64,AAAA"},
    ]
    await datasets.create_from_items("mixed", items)

    create, upload = script.requests
    lines = [json.loads(line) for line in upload.content.splitlines()]
    assert lines == [
        {"kind": "Image", "url": "https://cdn.test/1.png"},
        {"kind": "Image", "url": "https://cdn.test/2.png"},
        {"kind": "Image", "url": "data:image/png;base64,AAAA"},
    ]
    assert body(create)["spec"]["source"] == {
        "kind": "UploadedNewlineDelimitedJsonFile",
        "sizeBytes": len(upload.content),
        "crc32c": crc(upload.content),
    }


async def test_create_from_items_takes_an_async_iterable_and_spills_to_disk(
    script: Script, datasets: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets_module, "SPOOL_MAX_BYTES", 200)
    monkeypatch.setattr(datasets_module, "CHUNK_BYTES", 128)

    async def urls() -> AsyncIterator[str]:
        for i in range(2500):
            yield f"https://cdn.test/{i}.png"

    script.replies += [ok(wire.DATASET), ok({})]
    await datasets.create_from_items("generated", urls())
    create, upload = script.requests
    assert upload.content == compact(*(f"https://cdn.test/{i}.png" for i in range(2500)))
    assert body(create)["spec"]["source"]["sizeBytes"] == len(upload.content)
    assert body(create)["spec"]["source"]["crc32c"] == crc(upload.content)


@pytest.mark.parametrize(
    ("items", "index", "match"),
    [
        (["https://a", 42], 1, r"`items\[1\]` must be a URL string or a dict"),
        (["https://a", {"uri": "https://b"}], 1, "unknown keys"),
        ([{"kind": "Video", "url": "https://a"}], 0, '`kind` must be "Image"'),
        ([{"kind": "Image"}], 0, "`url` must be a non-empty string"),
        (["https://a", "https://b", ""], 2, "`url` must be a non-empty string"),
        (["https://a b"], 0, "whitespace"),
        ([None], 0, "must be a URL string"),
    ],
)
async def test_a_bad_item_fails_with_its_index_before_anything_is_sent(
    script: Script, datasets: Datasets, items: list[Any], index: int, match: str
) -> None:
    with pytest.raises(DatasetFileError, match=match) as info:
        await datasets.create_from_items("bad", items)
    assert info.value.item == index
    assert script.requests == []


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ([], "`items` is empty"),
        ("https://a", "`items` must be an iterable"),
        ({"url": "https://a"}, "`items` must be an iterable"),
        (42, "`items` must be an iterable"),
    ],
)
async def test_bad_items_fail_before_anything_is_sent(
    script: Script, datasets: Datasets, items: Any, match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        await datasets.create_from_items("bad", items)
    assert script.requests == []


# ----------------------------------------------------------- get, list, delete


async def test_get_list_iter_delete_request_shapes(script: Script, datasets: Datasets) -> None:
    script.replies += [
        ok(wire.DATASET),
        ok(wire.page(wire.DATASET, next_page="cursor-2")),
        ok(wire.page(wire.DATASET, next_page="cursor-2")),
        ok(wire.page(wire.dataset("Processed"))),
        ok({"id": DATASET_ID, "deleted": True}),
    ]
    assert (await datasets.get(DATASET_ID)).id == DATASET_ID
    page = await datasets.list({"limit": 1})
    assert page["next_page"] == "cursor-2"
    assert len(page.data) == 1
    seen = [d.status.overview async for d in datasets.iter(page_size=1)]
    assert seen == ["Waiting", "Processed"]
    assert (await datasets.delete(DATASET_ID)).deleted is True

    assert [(r.method, r.url.path, dict(r.url.params)) for r in script.requests] == [
        ("GET", f"{BASE}/{DATASET_ID}", {}),
        ("GET", BASE, {"limit": "1"}),
        ("GET", BASE, {"limit": "1"}),
        ("GET", BASE, {"limit": "1", "page": "cursor-2"}),
        ("DELETE", f"{BASE}/{DATASET_ID}", {}),
    ]
    assert all(r.headers["Secret-Key"] == KEY for r in script.requests)


@pytest.mark.parametrize("method", ["get", "delete", "wait_until_done"])
@pytest.mark.parametrize("bad", ["", "dataset_", "dataset_../x", "dataset_a/b", "job_1", None])
async def test_bad_dataset_ids_fail_before_anything_is_sent(
    script: Script, datasets: Datasets, method: str, bad: Any
) -> None:
    with pytest.raises(ValidationError, match="dataset_id"):
        await getattr(datasets, method)(bad)
    assert script.requests == []


async def test_bad_pagination_fails_before_anything_is_sent(
    script: Script, datasets: Datasets
) -> None:
    with pytest.raises(ValidationError, match="limit"):
        await datasets.list({"limit": 0})
    assert script.requests == []


# ------------------------------------------------------------------ waiting


async def test_wait_until_done_rides_out_errors_until_ready(
    script: Script, datasets: Datasets
) -> None:
    script.replies += [
        ok(wire.dataset("Waiting")),
        error(503),  # retried inside the HTTP layer
        ok(wire.dataset("Uploading", updateTime=2)),
        ok(wire.dataset("Uploaded", updateTime=3, itemCount=3)),
    ]
    done = await datasets.wait_until_done(DATASET_ID, interval=0.01, timeout=5)
    assert done.status.overview is DatasetStatusOverview.UPLOADED
    assert done.status.item_count == 3


@pytest.mark.parametrize("overview", ["FailedUpload", "FailedProcessing"])
async def test_wait_until_done_raises_on_a_failed_dataset(
    script: Script, datasets: Datasets, overview: str
) -> None:
    script.replies += [
        ok(wire.dataset("Processing")),
        ok(wire.dataset(overview, message="line 3: not valid JSON", updateTime=9)),
    ]
    with pytest.raises(DatasetFailedError, match="line 3: not valid JSON") as info:
        await datasets.wait_until_done(DATASET_ID, interval=0.01, timeout=5)
    assert info.value.dataset.status.overview == overview


async def test_wait_until_done_times_out_with_the_last_snapshot(datasets: Datasets) -> None:
    handler_calls = 0

    def always_processing(request: httpx.Request) -> httpx.Response:
        nonlocal handler_calls
        handler_calls += 1
        return ok(wire.dataset("Processing"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(always_processing))
    async with AsyncClient(
        KEY, base_url="http://nexus.test", http_client=client, retry=FAST_RETRY
    ) as sdk:
        waiting = sdk.get_project(PROJECT).batch.datasets
        with pytest.raises(DatasetWaitTimeoutError, match=r"not ready after 0\.2 s") as info:
            await waiting.wait_until_done(DATASET_ID, interval=0.02, timeout=0.2)
    assert isinstance(info.value, WaitTimeoutError)
    assert info.value.dataset is not None
    assert info.value.dataset.status.overview == "Processing"
    assert handler_calls > 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": "1"}, "interval"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
    ],
)
async def test_bad_wait_arguments_fail_before_anything_is_sent(
    script: Script, datasets: Datasets, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        await datasets.wait_until_done(DATASET_ID, **kwargs)
    assert script.requests == []


# ----------------------------------------------------- live, against LocalNexus


async def test_live_create_upload_wait_list_delete(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with live(tmp_path, images=3) as (nexus, batch):
            urls = [nexus.static_url(f"item-{i}.png") for i in range(3)]
            path = write_ndjson(tmp_path / "items.ndjson", urls)
            with path.open("a") as extra:
                extra.write("\n")  # blank lines are skipped on both sides

            created = await batch.datasets.create("live", path)
            ready = await batch.datasets.wait_until_done(created.id, **POLL)

            assert ready.status.is_ready
            assert ready.status.item_count == 3
            assert ready.status.source.size_bytes == path.stat().st_size
            assert [d.id async for d in batch.datasets.iter()] == [created.id]
            assert (await batch.datasets.delete(created.id)).deleted is True
            assert (await batch.datasets.list()).data == []


async def test_live_create_from_items(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with live(tmp_path, images=2) as (nexus, batch):

            async def items() -> AsyncIterator[Any]:
                yield nexus.static_url("item-0.png")
                yield {"url": nexus.static_url("item-1.png")}

            created = await batch.datasets.create_from_items("from-items", items())
            ready = await batch.datasets.wait_until_done(created.id, **POLL)
            assert ready.status.item_count == 2


async def test_live_upload_is_retried_after_a_storage_fault(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with live(tmp_path, images=1) as (nexus, batch):
            nexus.inject_fault("PUT", "/_nexus/uploads/", status=503)
            path = write_ndjson(tmp_path / "items.ndjson", [nexus.static_url("item-0.png")])
            created = await batch.datasets.create("retried", path)
            ready = await batch.datasets.wait_until_done(created.id, **POLL)
            uploads = [r for r in nexus.requests if r.method == "PUT"]
            assert [r.status for r in uploads] == [503, 200]
            assert ready.status.item_count == 1


async def test_live_checksum_mismatch_fails_the_upload(tmp_path: Path) -> None:
    """A file that does not match its declared CRC32C is refused, and the wait says so."""
    with anyio.fail_after(20):
        async with live(tmp_path) as (nexus, batch):
            content = ndjson("https://cdn.test/1.png")
            # The HTTP layer on its own: the create must not check the file first.
            http = HTTPCore(
                secret_key=nexus.secret_key,
                base_url=nexus.base_url,
                timeout=httpx.Timeout(10.0),
                retry=FAST_RETRY,
                http_client=None,
                max_connections=2,
                max_in_flight=2,
            )
            base = f"/projects/{nexus.project_id}/batch/datasets"
            source = {"kind": "UploadedNewlineDelimitedJsonFile", "crc32c": crc(content + b"x")}
            spec = {"source": {**source, "sizeBytes": len(content)}}
            created = await http.request(
                "POST", base, into=Dataset, retry=Retry.UNSENT, body={"name": "bad", "spec": spec}
            )
            upload = created.status.source.upload_url

            async def body() -> AsyncIterator[bytes]:
                yield content

            with pytest.raises(BadRequestError, match=r"(?i)crc32c"):
                await http.upload(
                    upload.method,
                    upload.url,
                    headers={**upload.headers, "Content-Length": str(len(content))},
                    content=body,
                )
            await http.aclose()
            with pytest.raises(DatasetFailedError) as info:
                await batch.datasets.wait_until_done(created.id, **POLL)
            assert info.value.dataset.status.overview is DatasetStatusOverview.FAILED_UPLOAD


async def test_live_bad_ndjson_never_reaches_the_server(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with live(tmp_path) as (nexus, batch):
            path = tmp_path / "items.ndjson"
            path.write_text('{"kind": "Image", "url": "https://a"}\n{"kind": "Image", "url": 3}\n')
            with pytest.raises(DatasetFileError, match="line 2") as info:
                await batch.datasets.create("bad", path)
            assert info.value.line == 2
            assert nexus.requests == []


async def test_live_processing_failure_names_the_line(tmp_path: Path) -> None:
    """The server may refuse an item the SDK cannot judge (here an ftp: URL)."""
    with anyio.fail_after(20):
        async with live(tmp_path) as (_, batch):
            path = write_ndjson(tmp_path / "items.ndjson", ["https://a.test/1", "ftp://a.test/2"])
            created = await batch.datasets.create("ftp", path)
            with pytest.raises(DatasetFailedError, match="line 2") as info:
                await batch.datasets.wait_until_done(created.id, **POLL)
            assert info.value.dataset.status.overview is DatasetStatusOverview.FAILED_PROCESSING


# ------------------------------------------- the scanner against a plain reference

LINES = [
    b'{"kind":"Image","url":"https://x.test/1.png"}',
    b'{"kind": "Image", "url": "https://x.test/2.png", "extra": [1, 2]}',
    b'  {"url": "data:image/png;base64,AAAA", "kind": "Image"}  ',
    b'{"kind":"Image","url":"https://x.test/\xc3\xa9.png"}\r',
    b'{"kind":"Image","url":"https://x.test/\\u00e9"}',
    b"",
    b"   ",
    b"\r",
    b'{"kind":"Image"}',
    b'{"kind":"Video","url":"https://x.test/v"}',
    b'{"kind":"Image","url":"https://x.test/a b"}',
    b'{"kind":"Image","url":"https://x.test/a\\tb"}',
    b'{"kind":"Image","url":""}',
    b'{"kind":"Image","url":null}',
    b'[{"kind":"Image","url":"https://x.test/1"}]',
    b'{"kind":"Image","url":"https://x.test/1"} trailing',
    b'{"kind":"Image","url":"https://x.test/1"}{"kind":"Image","url":"https://x.test/2"}',
    b'{"kind":"Image","url":"https://x.test/1"',
    b"NaN",
    b'"https://x.test/1"',
    b"\xff\xfe",
    b'{"kind":"Image","url":"https://x.test/\xe2\x80\xa8"}',
]


def reference_scan(content: bytes) -> tuple[int, int | None]:
    """Items counted before the first bad line, and that line (None if all are good)."""
    items = 0
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return items, number
        if not text.strip():
            continue
        try:
            item = json.loads(text)
        except ValueError:
            return items, number
        if datasets_module._item_problem(item) is not None:
            return items, number
        items += 1
    return items, None


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(LINES),
            st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=20).map(
                str.encode
            ),
        ),
        max_size=30,
    ),
    final_newline=st.booleans(),
    chunk=st.integers(min_value=1, max_value=80),
)
def test_the_scanner_agrees_with_a_line_by_line_reference(
    lines: list[bytes], final_newline: bool, chunk: int
) -> None:
    content = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected_items, expected_line = reference_scan(content)
    scan = datasets_module._NdjsonScan("x.ndjson")

    def feed_all() -> None:
        for start in range(0, len(content), chunk):
            scan.feed(content[start : start + chunk])
        scan.finish()

    if expected_line is not None or expected_items == 0:
        with pytest.raises(DatasetFileError) as info:
            feed_all()
        assert info.value.line == expected_line  # None: "has no items"
        return
    feed_all()
    assert scan.items == expected_items
    assert scan.size == len(content)
    assert scan.crc.b64() == crc(content)


async def test_live_cancelling_during_the_upload_deletes_the_dataset(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        async with live(tmp_path, images=1) as (nexus, batch):
            nexus.inject_fault("PUT", "/_nexus/uploads/", status=None, latency=10.0)
            path = write_ndjson(tmp_path / "items.ndjson", [nexus.static_url("item-0.png")])
            with anyio.move_on_after(0.5) as scope:
                await batch.datasets.create("cancelled", path)
            assert scope.cancelled_caught
            assert (await batch.datasets.list()).data == []
            assert [r.method for r in nexus.requests] == ["POST", "PUT", "DELETE", "GET"]
