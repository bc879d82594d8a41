"""Bounded work per request (issue #13, item 2): one attempt for ``:test``, a read
deadline for request bodies, drained rejections, a cap on decoded pixels."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import anyio
import httpx
import pytest

from nexus_async._crc32c import crc32c_b64
from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import Receiver, all_logs, create_job, data_url, dataset_body, ndjson, wait_terminal

JSON = dict[str, Any]


async def test_webhook_test_makes_one_attempt_whatever_the_policy(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    spec = {
        "endpoint": receiver.url("/down"),
        "retries": {"maxRetries": 20, "maxBackoffMs": 3_600_000},
    }
    webhook = (await client.post("webhooks", json={"name": "w", "spec": spec})).json()
    with anyio.fail_after(5):  # the whole schedule would take hours
        result = (await client.post(f"webhooks/{webhook['id']}:test")).json()
    assert result["status"] == "Failed"
    assert (result["responseCode"], result["attemptCount"]) == (500, 1)
    assert result["reason"] == "HTTP 500"
    assert len(receiver.at("/down")) == 1


async def test_webhook_test_reports_the_real_reason(
    client: httpx.AsyncClient, free_tcp_port: int
) -> None:
    spec = {"endpoint": f"http://127.0.0.1:{free_tcp_port}/", "retries": {"maxRetries": 20}}
    webhook = (await client.post("webhooks", json={"name": "w", "spec": spec})).json()
    with anyio.fail_after(5):
        result = (await client.post(f"webhooks/{webhook['id']}:test")).json()
    assert (result["status"], result["responseCode"], result["attemptCount"]) == ("Failed", 0, 1)
    assert result["reason"].startswith("ConnectError"), result["reason"]
    assert "ExceptionGroup" not in result["reason"]
    assert "TaskGroup" not in result["reason"]


def _head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


async def _answer_of_a_dribbled_body(base_url: str, head: bytes, part: bytes) -> bytes:
    """Send the head and part of the body, then stall; return what the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(head + part)
        answer = b""
        with anyio.fail_after(10):
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive()
    return answer


async def test_a_dribbled_upload_times_out_and_a_retry_gets_in() -> None:
    async with LocalNexus(body_timeout=0.3) as nexus, api_client(nexus) as client:
        content = ndjson([data_url(b"x")] * 50)
        created = (await client.post("datasets", json=dataset_body(content))).json()
        upload = created["status"]["source"]["uploadUrl"]
        path = upload["url"].removeprefix(nexus.base_url)
        headers = "".join(f"{name}: {value}\r\n" for name, value in upload["headers"].items())
        answer = await _answer_of_a_dribbled_body(
            nexus.base_url, _head(path, len(content), headers), content[:10]
        )
        assert answer.startswith(b"HTTP/1.1 408"), answer
        status = (await client.get(f"datasets/{created['id']}")).json()["status"]
        assert status["overview"] == "FailedUpload"
        assert "did not arrive" in status["message"]
        retry = await client.put(upload["url"], headers=upload["headers"], content=content)
        assert retry.status_code == 200, retry.text
        dataset = (await client.get(f"datasets/{created['id']}")).json()
        assert dataset["status"]["overview"] == "Uploaded"


async def test_a_dribbled_json_body_is_408() -> None:
    async with LocalNexus(body_timeout=0.3) as nexus:
        path = f"/projects/{nexus.project_id}/batch/webhooks"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nSecret-Key: {nexus.secret_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        ).encode()
        answer = await _answer_of_a_dribbled_body(nexus.base_url, head, b'{"name": ')
        assert answer.startswith(b"HTTP/1.1 408"), answer
        async with api_client(nexus) as client:
            assert (await client.get("webhooks")).json()["data"] == []


@pytest.mark.parametrize("problem", ["wrong hash", "unknown token", "in progress"])
async def test_rejected_uploads_are_answered_not_reset(
    nexus: LocalNexus, client: httpx.AsyncClient, problem: str
) -> None:
    content = b'{"kind": "Image", "url": "data:,x"}\n' * 400_000  # 14 MB
    created = (await client.post("datasets", json=dataset_body(content))).json()
    upload = created["status"]["source"]["uploadUrl"]
    url, headers = upload["url"], dict(upload["headers"])
    expected = 400
    if problem == "wrong hash":
        headers["x-goog-hash"] = f"crc32c={crc32c_b64(b'other')}"
    elif problem == "unknown token":
        url, expected = url.rsplit("/", 1)[0] + "/nope", 404
    else:
        nexus.store.uploads[url.rsplit("/", 1)[1]].set_status("Uploading", "busy")
        expected = 409
    nexus.clear_requests()
    async with httpx.AsyncClient(trust_env=False, timeout=20) as raw:
        for _ in range(3):  # a reset would show as a transport error in some of them
            response = await raw.put(url, headers=headers, content=content)
            assert response.status_code == expected, response.text
    assert [r.status for r in nexus.requests] == [expected] * 3


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` (its pixel data is not valid)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


async def test_huge_images_fail_preprocessing_before_decoding(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset_id = nexus.seed_dataset([data_url(_png_header(7000, 7000))])
    webhook_id = nexus.seed_webhook(receiver.url("/ok"))
    job = await create_job(client, dataset_id, [webhook_id], nexus.deployment_id)
    final = await wait_terminal(client, job["id"])
    assert final["status"]["items"]["FailedProcess"] == 1
    [failure] = [e for e in await all_logs(client, job["id"]) if e["kind"] == "ItemFailed"]
    assert "7000x7000" in failure["reason"]
    assert str(3840 * 2160) in failure["reason"]


async def test_a_huge_declared_length_buys_no_extra_time() -> None:
    async with (
        LocalNexus(body_timeout=0.3, max_body_bytes=1024, max_upload_bytes=1024) as nexus,
        api_client(nexus) as client,
    ):
        created = (await client.post("datasets", json=dataset_body(b"x\n"))).json()
        upload = created["status"]["source"]["uploadUrl"]
        path = upload["url"].removeprefix(nexus.base_url)
        headers = "".join(f"{name}: {value}\r\n" for name, value in upload["headers"].items())
        # Rejected at once (the length differs from sizeBytes); the rest would never come.
        answer = await _answer_of_a_dribbled_body(
            nexus.base_url, _head(path, 10**15, headers), b"x"
        )
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert b"connection: close" in answer.lower()
