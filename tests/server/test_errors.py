"""Client mistakes anywhere get the spec's error status and a JSON message, never a 500."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import httpx
import pytest

from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import dataset_body, idle_job, job_body, now_ms


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "`body` must be a JSON object (got an array)"),
        (b'"text"', "`body` must be a JSON object"),
        (b"", "empty body"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
@pytest.mark.parametrize("path", ["jobs", "datasets", "webhooks"])
async def test_malformed_bodies_are_400(
    client: httpx.AsyncClient, path: str, content: bytes, message: str
) -> None:
    response = await client.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert response.json()["code"] == "bad_request"


async def test_oversize_bodies_are_413(nexus: LocalNexus, client: httpx.AsyncClient) -> None:
    huge = {"name": "x" * (1024 * 1024 + 10), "spec": {}}
    response = await client.post("webhooks", json=huge)
    assert response.status_code == 413
    assert response.json() == {
        "message": "the request body is larger than 1048576 bytes",
        "code": "too_large",
    }
    async with LocalNexus(max_body_bytes=100) as small, api_client(small) as c:

        async def chunks() -> Any:  # no Content-Length: counted while reading
            for _ in range(10):
                yield b" " * 50

        streamed = await c.post("webhooks", content=chunks())
        assert streamed.status_code == 413
        assert (await c.post("webhooks", content=b"{}" + b" " * 90)).status_code == 400


async def test_unknown_routes_and_wrong_methods(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    missing = await client.get("nothing/here")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert "/batch/nothing/here" in missing.json()["message"]
    async with httpx.AsyncClient(trust_env=False) as raw:
        root = await raw.get(f"{nexus.base_url}/")
        assert root.status_code == 404
        assert root.headers["content-type"] == "application/json"
        static = await raw.get(f"{nexus.base_url}/static/img/none.png")
        assert static.status_code == 404
        assert static.json()["code"] == "not_found"
    wrong = await client.put("jobs", json={})
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    head = await client.head("jobs")
    assert head.status_code == 200


def _mutations(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Replace, drop or retype one random field somewhere in ``body``."""
    mutated = copy.deepcopy(body)
    paths: list[list[str]] = []

    def collect(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append([*path, key])
                collect(value, [*path, key])

    collect(mutated, [])
    target_path = rng.choice(paths)
    parent = mutated
    for key in target_path[:-1]:
        parent = parent[key]
    choice = rng.randrange(4)
    if choice == 0:
        del parent[target_path[-1]]
    else:
        parent[target_path[-1]] = rng.choice(
            [
                None,
                0,
                -5,
                1.5,
                True,
                "",
                "x" * 3000,
                [],
                {},
                [1, "a"],
                {"a": {}},
                "dataset_../x",
                10**20,
            ]
        )
    return mutated


async def test_fuzzed_bodies_never_cause_a_server_error(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    rng = random.Random(2024)
    job = await idle_job(nexus, client)
    dataset_id = job["spec"]["datasetId"]
    webhook_id = job["spec"]["resultDelivery"]["destinations"][0]["webhookId"]
    templates: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "jobs", job_body(dataset_id, [webhook_id], nexus.deployment_id)),
        ("POST", "datasets", dataset_body(b"x")),
        (
            "POST",
            "webhooks",
            {
                "name": "w",
                "spec": {"endpoint": "http://x", "retries": {"maxRetries": 1, "maxBackoffMs": 1}},
            },
        ),
        (
            "PATCH",
            f"webhooks/{webhook_id}",
            {"name": "n", "spec": {"endpoint": "http://y", "retries": {"maxRetries": 2}}},
        ),
        ("PATCH", f"jobs/{job['id']}", {"spec": {"stopAtTime": now_ms() + 7_200_000}}),
        ("PUT", f"webhooks/{webhook_id}/secret", {"contents": "x"}),
    ]
    statuses: set[int] = set()
    for _ in range(60):
        for method, path, template in templates:
            body = _mutations(template, rng)
            response = await client.request(method, path, content=json.dumps(body))
            statuses.add(response.status_code)
            assert response.status_code < 500, (method, path, body, response.text)
            if response.status_code >= 400:
                error = response.json()
                assert set(error) == {"message", "code"}
                assert error["message"]
    assert {200, 400} <= statuses


@pytest.mark.parametrize("ident", ["..", "a%2Fb", "x%3Fy", "%20", "batchjob_%23frag"])
async def test_odd_ids_in_paths_are_plain_404s(client: httpx.AsyncClient, ident: str) -> None:
    for kind in ("jobs", "datasets", "webhooks"):
        response = await client.get(f"{kind}/{ident}")
        assert response.status_code == 404, (kind, ident, response.text)
        assert response.json()["code"] == "not_found"
