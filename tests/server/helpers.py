"""Helpers for server tests: images, a webhook receiver, and raw-HTTP resource helpers.

These talk to the server with a plain ``httpx.AsyncClient`` and JSON dicts, never the
SDK, so they check the server against the spec alone.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexus_async._crc32c import crc32c_b64
from nexus_async.server import LocalNexus
from nexus_async.signing import SignatureError, verify

from ..support import Changes
from ..support import data_url as data_url
from ..support import png_bytes as png_bytes

JSON = dict[str, Any]
COUNTERS = (
    "Gathered",
    "FailedGather",
    "Preprocessed",
    "FailedProcess",
    "Predicted",
    "FailedPredict",
    "Delivered",
    "FailedDeliver",
)
TERMINAL = ("Reached", "Failed")
HOUR_MS = 3_600_000

TINY_PNG = data_url(png_bytes())
CORRUPT_PNG = data_url(b"\x89PNG\r\n\x1a\n this is not an image")


def ndjson(urls: Sequence[str]) -> bytes:
    return "".join(json.dumps({"kind": "Image", "url": url}) + "\n" for url in urls).encode()


def dataset_body(content: bytes, name: str = "items") -> JSON:
    return {
        "name": name,
        "spec": {
            "source": {
                "kind": "UploadedNewlineDelimitedJsonFile",
                "sizeBytes": len(content),
                "crc32c": crc32c_b64(content),
            }
        },
    }


async def create_dataset(client: httpx.AsyncClient, urls: Sequence[str]) -> JSON:
    """Create and upload a dataset over HTTP, as a client would; return the final Dataset."""
    content = ndjson(urls)
    response = await client.post("datasets", json=dataset_body(content))
    assert response.status_code == 200, response.text
    upload = response.json()["status"]["source"]["uploadUrl"]
    put = await client.request(
        upload["method"], upload["url"], headers=upload["headers"], content=content
    )
    assert put.status_code == 200, put.text
    got = await client.get(f"datasets/{response.json()['id']}")
    dataset: JSON = got.json()
    assert dataset["status"]["overview"] == "Uploaded", dataset
    return dataset


async def create_webhook(
    client: httpx.AsyncClient,
    endpoint: str,
    *,
    secret: str | None = None,
    max_retries: int = 3,
    max_backoff_ms: int = 10,
) -> JSON:
    spec: JSON = {
        "endpoint": endpoint,
        "retries": {"maxRetries": max_retries, "maxBackoffMs": max_backoff_ms},
    }
    if secret is not None:
        spec["secret"] = {"contents": secret}
    response = await client.post("webhooks", json={"name": "hook", "spec": spec})
    assert response.status_code == 200, response.text
    webhook: JSON = response.json()
    return webhook


def job_body(
    dataset_id: str,
    webhook_ids: Sequence[str],
    deployment_id: str,
    **times: int,
) -> JSON:
    return {
        "name": "job",
        "spec": {
            "datasetId": dataset_id,
            "deployment": {"kind": "ExistingDeployment", "deploymentId": deployment_id},
            "resultDelivery": {
                "destinations": [{"kind": "Webhook", "webhookId": w} for w in webhook_ids]
            },
            **times,
        },
    }


async def create_job(
    client: httpx.AsyncClient,
    dataset_id: str,
    webhook_ids: Sequence[str],
    deployment_id: str,
    **times: int,
) -> JSON:
    response = await client.post(
        "jobs", json=job_body(dataset_id, webhook_ids, deployment_id, **times)
    )
    assert response.status_code == 200, response.text
    job: JSON = response.json()
    return job


async def idle_job(nexus: LocalNexus, client: httpx.AsyncClient) -> JSON:
    """A job over one seeded item that starts in an hour: nothing runs meanwhile."""
    dataset_id = nexus.seed_dataset([TINY_PNG])
    webhook_id = nexus.seed_webhook("http://127.0.0.1:9/unused")
    return await create_job(
        client, dataset_id, [webhook_id], nexus.deployment_id, startAtTime=now_ms() + HOUR_MS
    )


async def wait_terminal(client: httpx.AsyncClient, job_id: str, timeout: float = 20.0) -> JSON:
    """Poll until the job is Reached or Failed (bounded by ``timeout``)."""
    with anyio.fail_after(timeout):
        while True:
            job: JSON = (await client.get(f"jobs/{job_id}")).json()
            if job["status"]["overview"] in TERMINAL:
                return job
            await anyio.sleep(0.02)


async def wait_for(client: httpx.AsyncClient, job_id: str, counter: str, at_least: int) -> JSON:
    """Poll until a counter reaches ``at_least`` (bounded)."""
    with anyio.fail_after(15):
        while True:
            job: JSON = (await client.get(f"jobs/{job_id}")).json()
            if job["status"]["items"][counter] >= at_least:
                return job
            await anyio.sleep(0.01)


def check_invariants(job: JSON, item_count: int) -> None:
    c = job["status"]["items"]
    assert c["Gathered"] + c["FailedGather"] <= item_count, c
    assert c["Preprocessed"] + c["FailedProcess"] <= c["Gathered"], c
    assert c["Predicted"] + c["FailedPredict"] <= c["Preprocessed"], c
    assert c["Delivered"] + c["FailedDeliver"] <= c["Predicted"], c


def ended(job: JSON) -> int:
    c = job["status"]["items"]
    return int(
        c["FailedGather"]
        + c["FailedProcess"]
        + c["FailedPredict"]
        + c["Delivered"]
        + c["FailedDeliver"]
    )


def assert_job_shape(job: JSON) -> None:
    """Every field of the spec's Job, with the right JSON type."""
    assert isinstance(job["id"], str)
    assert job["id"].startswith("batchjob_")
    assert job["object"] == "batch_job"
    assert isinstance(job["name"], str)
    assert isinstance(job["projectId"], str)
    assert job["projectId"].startswith("proj_")
    for key in ("createDate", "updateDate"):
        assert type(job[key]) is int
    spec = job["spec"]
    assert isinstance(spec["datasetId"], str)
    assert spec["deployment"]["kind"] in ("ExistingDeployment", "NewEphemeralDeployment")
    for destination in spec["resultDelivery"]["destinations"]:
        assert destination["kind"] == "Webhook"
        assert isinstance(destination["webhookId"], str)
    assert type(spec["startAtTime"]) is int
    assert type(spec["stopAtTime"]) is int
    status = job["status"]
    assert isinstance(status["overview"], str)
    assert isinstance(status["message"], str)
    assert type(status["updateDate"]) is int
    assert status["reason"] is None or isinstance(status["reason"], str)
    assert status["cancelledAt"] is None or type(status["cancelledAt"]) is int
    assert set(status["items"]) == set(COUNTERS)
    assert all(type(v) is int for v in status["items"].values())


def assert_log_entry_shape(entry: JSON) -> None:
    assert isinstance(entry["id"], str)
    assert entry["id"]
    assert isinstance(entry["kind"], str)
    assert type(entry["createTime"]) is int
    assert entry["level"] in ("Debug", "Info", "Warning", "Error")
    assert isinstance(entry["item"], str)
    assert isinstance(entry["status"], str)
    assert isinstance(entry["timeMs"], float)
    assert isinstance(entry["reason"], str)


async def all_logs(client: httpx.AsyncClient, job_id: str) -> list[JSON]:
    """Every entry of a job, newest first (the job must have at most 1000)."""
    logs: JSON = (await client.get(f"jobs/{job_id}/logs")).json()
    entries: list[JSON] = logs["entries"]
    assert len(entries) < 1000
    return entries


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> JSON:
        value: JSON = json.loads(self.body)
        return value

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str | Sequence[str]) -> None:
        verify(
            secret,
            self.headers["webhook-id"],
            self.headers["webhook-timestamp"],
            self.body,
            self.headers["webhook-signature"],
        )

    def verifies(self, secret: str) -> bool:
        try:
            self.verify(secret)
        except SignatureError:
            return False
        return True


@dataclass
class Receiver:
    """A webhook receiver on loopback with scripted behaviour per path.

    - ``/ok``: 200;
    - ``/flaky/N``: 500 for the first N attempts of each ``webhook-id``, then 200;
    - ``/down``: always 500;
    - ``/slow``: answers after ``slow_seconds`` (or when the client goes away);
    - ``/img/...`` (GET): serves ``images[name]`` or 404, so items can live here too.
    """

    base_url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    arrivals: Counter[str] = field(default_factory=Counter)
    images: dict[str, bytes] = field(default_factory=dict)
    slow_seconds: float = 5.0
    changes: Changes = field(default_factory=Changes)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def wait_arrivals(self, path: str, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` requests to ``path`` have arrived (bounded)."""
        await self.changes.until(lambda: self.arrivals[path] >= count, timeout)

    async def wait_released(self, path: str, timeout: float = 3.0) -> None:
        """Until every request that arrived at ``path`` has been answered (bounded)."""
        await self.changes.until(lambda: len(self.at(path)) >= self.arrivals[path], timeout)

    def at(self, path: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.path == path]

    def accepted(self, path: str) -> dict[str, Delivery]:
        """Deliveries answered 2xx, deduplicated by webhook-id as a receiver should."""
        return {d.id: d for d in self.at(path) if 200 <= d.status < 300}

    async def _hold(self, request: Request) -> None:
        """Wait ``slow_seconds``, or until the client hangs up (the body is read already)."""
        with anyio.move_on_after(self.slow_seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        webhook_id = request.headers.get("webhook-id", "")
        self.attempts[webhook_id] += 1
        self.arrivals[path] += 1
        self.changes.notify()
        status = 200
        if path == "/down":
            status = 500
        elif path.startswith("/flaky/"):
            status = 500 if self.attempts[webhook_id] <= int(path.rsplit("/", 1)[1]) else 200
        elif path == "/slow":
            await self._hold(request)
        self.deliveries.append(Delivery(path, dict(request.headers), body, status))
        self.changes.notify()
        return JSONResponse({"received": webhook_id}, status_code=status)

    async def _image(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.arrivals[request.url.path] += 1
        self.changes.notify()
        if name.startswith("slow"):
            await self._hold(request)
        if name not in self.images:
            return JSONResponse({"message": "no such image"}, status_code=404)
        return Response(self.images[name], media_type="image/png")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/img/{name}", self._image, methods=["GET"]),
                Route("/{path:path}", self._hook, methods=["POST"]),
            ]
        )


def now_ms() -> int:
    return time.time_ns() // 1_000_000
