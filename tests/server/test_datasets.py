"""Datasets: create, upload (size, CRC32C, headers, NDJSON), get/list/delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nexus_async.server import LocalNexus

from .helpers import TINY_PNG, create_dataset, dataset_body, ndjson


def assert_dataset_shape(dataset: dict[str, Any]) -> None:
    assert dataset["id"].startswith("dataset_")
    assert dataset["object"] == "dataset"
    assert isinstance(dataset["name"], str)
    assert dataset["projectId"].startswith("proj_")
    for key in ("expiryTime", "createDate", "updateDate"):
        assert type(dataset[key]) is int
    status = dataset["status"]
    assert status["overview"] in (
        "Waiting",
        "Uploading",
        "Uploaded",
        "Processing",
        "Processed",
        "FailedUpload",
        "FailedProcessing",
    )
    assert isinstance(status["message"], str)
    assert type(status["updateTime"]) is int
    assert type(status["itemCount"]) is int
    source = status["source"]
    assert source["kind"] == "UploadedNewlineDelimitedJsonFile"
    upload = source["uploadUrl"]
    assert upload["method"] == "PUT"
    assert isinstance(upload["url"], str)
    assert isinstance(upload["headers"], dict)
    assert type(upload["expiresAtTime"]) is int


async def start(client: httpx.AsyncClient, content: bytes) -> dict[str, Any]:
    response = await client.post("datasets", json=dataset_body(content))
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def put(
    client: httpx.AsyncClient, dataset: dict[str, Any], content: bytes, **headers: str
) -> httpx.Response:
    upload = dataset["status"]["source"]["uploadUrl"]
    sent = {**upload["headers"], **headers}
    return await client.request(upload["method"], upload["url"], headers=sent, content=content)


async def test_create_upload_get(nexus: LocalNexus, client: httpx.AsyncClient) -> None:
    content = ndjson([TINY_PNG, "https://example.invalid/a.png"])
    created = await start(client, content)
    assert_dataset_shape(created)
    assert created["status"]["overview"] == "Waiting"
    assert created["status"]["itemCount"] == 0
    upload = created["status"]["source"]["uploadUrl"]
    assert upload["url"].startswith(nexus.base_url + "/_nexus/uploads/")
    assert upload["headers"]["x-goog-hash"] == f"crc32c={created['status']['source']['crc32c']}"
    response = await put(client, created, content)
    assert response.status_code == 200
    got = (await client.get(f"datasets/{created['id']}")).json()
    assert_dataset_shape(got)
    assert got["status"]["overview"] == "Uploaded"
    assert got["status"]["itemCount"] == 2
    assert got["status"]["source"]["uploadUrl"] == upload  # still present after the upload
    # Re-sending the same file (a retry after a lost answer) changes nothing.
    assert (await put(client, created, content)).status_code == 200
    again = (await client.get(f"datasets/{created['id']}")).json()
    assert again["status"]["itemCount"] == 2
    assert again["updateDate"] == got["updateDate"]


async def test_corrupted_upload_fails_then_a_retry_succeeds(client: httpx.AsyncClient) -> None:
    content = ndjson([TINY_PNG])
    created = await start(client, content)
    damaged = bytes([content[0] ^ 1]) + content[1:]
    response = await put(client, created, damaged)
    assert response.status_code == 400
    assert "crc32c" in response.json()["message"]
    status = (await client.get(f"datasets/{created['id']}")).json()["status"]
    assert status["overview"] == "FailedUpload"
    assert "crc32c" in status["message"]
    assert (await put(client, created, content)).status_code == 200
    status = (await client.get(f"datasets/{created['id']}")).json()["status"]
    assert status["overview"] == "Uploaded"
    assert status["itemCount"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"short", "5 bytes"), (None, "larger than the declared")],
)
async def test_wrong_size_is_rejected(
    client: httpx.AsyncClient, body: bytes | None, message: str
) -> None:
    content = ndjson([TINY_PNG])
    created = await start(client, content)
    upload = created["status"]["source"]["uploadUrl"]

    async def chunks() -> Any:  # no Content-Length: the server must count
        yield content
        yield b"extra"

    payload: Any = body if body is not None else chunks()
    headers = dict(upload["headers"])
    response = await client.put(upload["url"], headers=headers, content=payload)
    assert response.status_code == 400
    assert message in response.json()["message"] or "Content-Length" in response.json()["message"]
    status = (await client.get(f"datasets/{created['id']}")).json()["status"]
    assert status["overview"] == "FailedUpload"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Content-Type": "application/json"}, "Content-Type"),
        ({"x-goog-hash": "crc32c=AAAAAA=="}, "x-goog-hash"),
        ({"x-goog-hash": "md5=abc"}, "x-goog-hash"),
    ],
)
async def test_upload_headers_are_required(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    content = ndjson([TINY_PNG])
    created = await start(client, content)
    response = await put(client, created, content, **headers)
    assert response.status_code == 400
    assert message in response.json()["message"]
    # A rejected request never started the upload.
    assert (await client.get(f"datasets/{created['id']}")).json()["status"]["overview"] == "Waiting"


async def test_bad_line_fails_processing_naming_it(client: httpx.AsyncClient) -> None:
    content = ndjson([TINY_PNG, TINY_PNG]) + b'{"kind": "Image", "url": "file:///etc/passwd"}\n'
    created = await start(client, content)
    assert (await put(client, created, content)).status_code == 200
    status = (await client.get(f"datasets/{created['id']}")).json()["status"]
    assert status["overview"] == "FailedProcessing"
    assert status["message"].startswith("line 3:")


async def test_unknown_or_deleted_upload_url_is_404(client: httpx.AsyncClient) -> None:
    content = ndjson([TINY_PNG])
    created = await start(client, content)
    deleted = await client.delete(f"datasets/{created['id']}")
    assert deleted.json() == {"id": created["id"], "deleted": True}
    assert (await put(client, created, content)).status_code == 404
    assert (await client.get(f"datasets/{created['id']}")).status_code == 404
    assert (await client.delete(f"datasets/{created['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("name"), "`name` is required"),
        (lambda b: b.update(name=5), "`name` must be a string"),
        (lambda b: b.pop("spec"), "`spec` is required"),
        (lambda b: b["spec"].pop("source"), "`spec.source` is required"),
        (lambda b: b["spec"]["source"].update(kind="Csv"), "`spec.source.kind`"),
        (
            lambda b: b["spec"]["source"].update(sizeBytes="10"),
            "`spec.source.sizeBytes` must be an integer",
        ),
        (
            lambda b: b["spec"]["source"].update(sizeBytes=-1),
            "`spec.source.sizeBytes` must be >= 0",
        ),
        (lambda b: b["spec"]["source"].update(crc32c="!!"), "`spec.source.crc32c`"),
        (lambda b: b["spec"]["source"].update(crc32c="AAAAAAAA"), "`spec.source.crc32c`"),
    ],
)
async def test_create_validation(client: httpx.AsyncClient, mutate: Any, field: str) -> None:
    body = dataset_body(b"x\n")
    mutate(body)
    response = await client.post("datasets", json=body)
    assert response.status_code == 400
    assert field in response.json()["message"]


async def test_oversize_dataset_is_413(static_dir: Any) -> None:
    async with (
        LocalNexus(max_upload_bytes=100) as small,
        httpx.AsyncClient(
            base_url=f"{small.base_url}/projects/{small.project_id}/batch/",
            headers={"Secret-Key": small.secret_key},
            trust_env=False,
        ) as c,
    ):
        body = dataset_body(b"x" * 101)
        response = await c.post("datasets", json=body)
        assert response.status_code == 413
        assert "sizeBytes" in response.json()["message"]
        assert (await c.post("datasets", json=dataset_body(b"x" * 100))).status_code == 200


async def test_list_pages(client: httpx.AsyncClient) -> None:
    ids = [(await create_dataset(client, [TINY_PNG]))["id"] for _ in range(5)]
    first = (await client.get("datasets", params={"limit": 2})).json()
    assert [d["id"] for d in first["data"]] == ids[::-1][:2]
    assert first["prevPage"] is None
    assert isinstance(first["nextPage"], str)
    second = (await client.get("datasets", params={"limit": 2, "page": first["nextPage"]})).json()
    third = (await client.get("datasets", params={"limit": 2, "page": second["nextPage"]})).json()
    assert [d["id"] for d in second["data"] + third["data"]] == ids[::-1][2:]
    assert third["nextPage"] is None
    assert all(d["status"]["source"]["uploadUrl"]["method"] == "PUT" for d in first["data"])
    everything = (await client.get("datasets")).json()
    assert len(everything["data"]) == 5
    assert everything["nextPage"] is None
