"""Jobs over HTTP: create validation, defaults, list/cursors, get, cancel, delete."""

from __future__ import annotations

import copy
from typing import Any

import anyio
import httpx
import pytest

from nexus_async.server import LocalNexus

from ..support import job_task_running, until_job_task_ends
from .helpers import (
    HOUR_MS,
    TINY_PNG,
    Receiver,
    assert_job_shape,
    create_dataset,
    create_job,
    create_webhook,
    job_body,
    now_ms,
    wait_terminal,
)

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
async def refs(nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver) -> dict[str, str]:
    dataset = await create_dataset(client, [TINY_PNG])
    webhook = await create_webhook(client, receiver.url("/ok"))
    return {"dataset": dataset["id"], "webhook": webhook["id"], "deployment": nexus.deployment_id}


async def later_job(
    client: httpx.AsyncClient, refs: dict[str, str], **times: int
) -> dict[str, Any]:
    """A job that starts in an hour (unless told otherwise)."""
    times.setdefault("startAtTime", now_ms() + HOUR_MS)
    return await create_job(client, refs["dataset"], [refs["webhook"]], refs["deployment"], **times)


def valid(refs: dict[str, str]) -> dict[str, Any]:
    return job_body(refs["dataset"], [refs["webhook"]], refs["deployment"])


async def test_create_fills_defaults_and_every_field(
    client: httpx.AsyncClient, refs: dict[str, str], receiver: Receiver
) -> None:
    before = now_ms()
    response = await client.post("jobs", json=valid(refs))
    assert response.status_code == 200, response.text
    job = response.json()
    assert_job_shape(job)
    assert before <= job["spec"]["startAtTime"] <= now_ms()
    assert job["spec"]["stopAtTime"] == job["spec"]["startAtTime"] + 3 * DAY_MS
    assert job["status"]["overview"] == "Waiting"
    assert job["status"]["reason"] is None
    assert job["status"]["cancelledAt"] is None
    assert job["spec"]["deployment"] == {
        "kind": "ExistingDeployment",
        "deploymentId": refs["deployment"],
    }
    finished = await wait_terminal(client, job["id"])
    assert_job_shape(finished)
    assert (finished["status"]["overview"], finished["status"]["message"]) == (
        "Reached",
        "Finished",
    )
    assert finished["status"]["items"]["Delivered"] == 1


async def test_ephemeral_deployment(client: httpx.AsyncClient, refs: dict[str, str]) -> None:
    body = valid(refs)
    body["spec"]["deployment"] = {
        "kind": "NewEphemeralDeployment",
        "template": {
            "artifactId": "artifact_1",
            "region": "local",
            "options": {"evaluationThreshold": 0.5},
        },
    }
    response = await client.post("jobs", json=body)
    assert response.status_code == 200, response.text
    deployment = response.json()["spec"]["deployment"]
    assert deployment == {
        "kind": "NewEphemeralDeployment",
        "template": {
            "artifactId": "artifact_1",
            "region": "local",
            "replicas": 1,
            "options": {"evaluationThreshold": 0.5},
        },
    }


def _set(path: str, value: Any) -> Any:
    def apply(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return apply


_DELETE = object()

BAD_BODIES = [
    (_set("name", _DELETE), "`name` is required"),
    (_set("name", ""), "`name` must not be empty"),
    (_set("name", 1), "`name` must be a string"),
    (_set("spec", _DELETE), "`spec` is required"),
    (_set("spec", []), "`spec` must be an object"),
    (_set("spec.datasetId", _DELETE), "`spec.datasetId` is required"),
    (_set("spec.datasetId", 5), "`spec.datasetId` must be a string"),
    (_set("spec.deployment", _DELETE), "`spec.deployment` is required"),
    (_set("spec.deployment.kind", "Other"), "`spec.deployment.kind` must be"),
    (_set("spec.deployment.deploymentId", _DELETE), "`spec.deployment.deploymentId` is required"),
    (
        _set("spec.deployment", {"kind": "NewEphemeralDeployment"}),
        "`spec.deployment.template` is required",
    ),
    (
        _set("spec.deployment", {"kind": "NewEphemeralDeployment", "template": {}}),
        "`spec.deployment.template.artifactId` is required",
    ),
    (
        _set(
            "spec.deployment", {"kind": "NewEphemeralDeployment", "template": {"artifactId": "x"}}
        ),
        "must start with 'artifact_'",
    ),
    (
        _set(
            "spec.deployment",
            {
                "kind": "NewEphemeralDeployment",
                "template": {"artifactId": "artifact_1", "replicas": 0},
            },
        ),
        "`spec.deployment.template.replicas` must be >= 1",
    ),
    (_set("spec.resultDelivery", _DELETE), "`spec.resultDelivery` is required"),
    (_set("spec.resultDelivery.destinations", []), "must be a non-empty array"),
    (_set("spec.resultDelivery.destinations", [{"kind": "Email"}]), "destinations[0].kind"),
    (
        _set("spec.resultDelivery.destinations", [{"kind": "Webhook"}]),
        "destinations[0].webhookId` is required",
    ),
    (_set("spec.startAtTime", "soon"), "`spec.startAtTime` must be an integer"),
    (_set("spec.stopAtTime", True), "`spec.stopAtTime` must be an integer"),
    (_set("spec.startAtTime", -1), "`spec.startAtTime` must be >= 0"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_BODIES)
async def test_create_rejects_bad_fields(
    client: httpx.AsyncClient, refs: dict[str, str], mutate: Any, message: str
) -> None:
    body = copy.deepcopy(valid(refs))
    mutate(body)
    response = await client.post("jobs", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert response.json()["code"] == "bad_request"
    assert (await client.get("jobs")).json()["data"] == []


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("spec.datasetId", "dataset_nope", "dataset 'dataset_nope'"),
        ("spec.deployment.deploymentId", "deploy_nope", "deployment 'deploy_nope'"),
        (
            "spec.resultDelivery.destinations",
            [{"kind": "Webhook", "webhookId": "webhook_nope"}],
            "webhook 'webhook_nope'",
        ),
    ],
)
async def test_create_names_unknown_references(
    client: httpx.AsyncClient, refs: dict[str, str], path: str, value: Any, named: str
) -> None:
    body = valid(refs)
    _set(path, value)(body)
    response = await client.post("jobs", json=body)
    assert response.status_code == 404
    assert named in response.json()["message"]


async def test_stop_must_follow_start_and_dataset_must_be_uploaded(
    client: httpx.AsyncClient, refs: dict[str, str]
) -> None:
    body = valid(refs)
    body["spec"].update(startAtTime=2_000_000, stopAtTime=2_000_000)
    response = await client.post("jobs", json=body)
    assert response.status_code == 400
    assert "stopAtTime" in response.json()["message"]

    pending = (
        await client.post(
            "datasets",
            json={
                "name": "p",
                "spec": {
                    "source": {
                        "kind": "UploadedNewlineDelimitedJsonFile",
                        "sizeBytes": 3,
                        "crc32c": "AAAAAA==",
                    }
                },
            },
        )
    ).json()
    body = valid(refs)
    body["spec"]["datasetId"] = pending["id"]
    response = await client.post("jobs", json=body)
    assert response.status_code == 409
    assert "Waiting" in response.json()["message"]


async def test_list_newest_first_with_stable_cursors(
    client: httpx.AsyncClient, refs: dict[str, str]
) -> None:
    ids = []
    for _ in range(7):
        job = await later_job(client, refs)
        ids.append(job["id"])
        await anyio.sleep(0.002)
    newest_first = ids[::-1]
    first = (await client.get("jobs", params={"limit": 3})).json()
    assert [j["id"] for j in first["data"]] == newest_first[:3]
    assert first["prevPage"] is None
    assert first["nextPage"]
    # Items change between the two page reads: the cursor still continues where it was.
    await client.delete(f"jobs/{newest_first[3]}")
    newer = await later_job(client, refs)
    second = (await client.get("jobs", params={"limit": 3, "page": first["nextPage"]})).json()
    assert [j["id"] for j in second["data"]] == newest_first[4:7]
    assert second["nextPage"] is None
    back = (await client.get("jobs", params={"limit": 3, "page": second["prevPage"]})).json()
    assert [j["id"] for j in back["data"]] == newest_first[:3]
    assert back["prevPage"] is not None  # the job created meanwhile is newer still
    top = (await client.get("jobs", params={"limit": 3, "page": back["prevPage"]})).json()
    assert [j["id"] for j in top["data"]] == [newer["id"]]
    assert top["prevPage"] is None
    for job in first["data"] + second["data"]:
        assert_job_shape(job)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "`limit` must be >= 1"),
        ({"limit": 1001}, "`limit` must be <= 1000"),
        ({"limit": "ten"}, "`limit` must be an integer"),
        ({"page": "not-a-cursor"}, "`page` is not a valid"),
    ],
)
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, params: dict[str, Any], message: str
) -> None:
    response = await client.get("jobs", params=params)
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_dataset_cursor_is_not_a_job_cursor(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await create_dataset(client, [TINY_PNG])
    cursor = (await client.get("datasets", params={"limit": 1})).json()["nextPage"]
    response = await client.get("jobs", params={"page": cursor})
    assert response.status_code == 400


async def test_cancel_waiting_job_and_terminal_states_do_not_change(
    client: httpx.AsyncClient, refs: dict[str, str]
) -> None:
    job = await later_job(client, refs)
    assert job_task_running(job["id"])
    requested = now_ms()
    cancelled = await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": requested}})
    assert cancelled.status_code == 200
    status = cancelled.json()["status"]
    assert status["overview"] == "Failed"
    assert status["message"] == "Batch job cancelled"
    at = status["cancelledAt"]
    assert type(at) is int
    assert at >= requested
    assert (
        status["reason"]
        == f"BatchJob not completed before defined stop time due to requested cancellation at {at}"
    )
    assert cancelled.json()["spec"]["stopAtTime"] == at
    again = await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": now_ms()}})
    assert again.json()["status"] == status
    await until_job_task_ends(job["id"])  # nothing can change the job from here on
    assert (await client.get(f"jobs/{job['id']}")).json()["status"] == status


async def test_patch_with_a_later_stop_time_moves_it(
    client: httpx.AsyncClient, refs: dict[str, str]
) -> None:
    start = now_ms() + HOUR_MS
    job = await later_job(client, refs, startAtTime=start)
    moved = (
        await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": start + 5000}})
    ).json()
    assert moved["spec"]["stopAtTime"] == start + 5000
    assert moved["status"]["overview"] == "Waiting"
    assert moved["status"]["cancelledAt"] is None
    before_start = await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": start - 1}})
    assert before_start.status_code == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "`spec` is required"),
        ({"spec": {}}, "`spec.stopAtTime` is required"),
        ({"spec": {"stopAtTime": "now"}}, "`spec.stopAtTime` must be an integer"),
    ],
)
async def test_patch_validation(
    client: httpx.AsyncClient, refs: dict[str, str], body: dict[str, Any], message: str
) -> None:
    job = await later_job(client, refs)
    response = await client.patch(f"jobs/{job['id']}", json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_delete(client: httpx.AsyncClient, refs: dict[str, str]) -> None:
    job = await later_job(client, refs)
    deleted = await client.delete(f"jobs/{job['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": job["id"], "deleted": True}
    assert (await client.get(f"jobs/{job['id']}")).status_code == 404
    assert (await client.get(f"jobs/{job['id']}/logs")).status_code == 404
    assert (
        await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": 1}})
    ).status_code == 404
    assert (await client.delete(f"jobs/{job['id']}")).status_code == 404
    assert (await client.get("jobs")).json()["data"] == []
