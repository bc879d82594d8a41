"""The pipeline end to end over loopback: gather, preprocess, predict, deliver, logs."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from nexus_async.server import LocalNexus
from nexus_async.signing import generate_secret

from ..support import job_task_running, until_job_task_ends
from .conftest import api_client
from .helpers import (
    CORRUPT_PNG,
    COUNTERS,
    TINY_PNG,
    Receiver,
    all_logs,
    assert_log_entry_shape,
    check_invariants,
    create_dataset,
    create_job,
    create_webhook,
    data_url,
    ended,
    now_ms,
    png_bytes,
    wait_for,
    wait_terminal,
)


def counters(job: dict[str, Any]) -> dict[str, int]:
    return dict(job["status"]["items"])


def expect(**nonzero: int) -> dict[str, int]:
    return {name: nonzero.get(name, 0) for name in COUNTERS}


async def test_mixed_items_flaky_webhook_exactly_once_after_dedup(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    good = [TINY_PNG] * 4 + [nexus.static_url("img/square.png")] * 2
    urls = [
        *good,
        nexus.static_url("img/missing.png"),  # 404 from the static folder
        receiver.url("/img/nothing.png"),  # 404 from another server
        nexus.static_url("img/broken.png"),  # gathered, not an image
        CORRUPT_PNG,  # a data: URL, not an image
    ]
    dataset = await create_dataset(client, urls)
    secret = generate_secret()
    webhook = await create_webhook(
        client, receiver.url("/flaky/2"), secret=secret, max_retries=3, max_backoff_ms=5
    )
    job = await create_job(client, dataset["id"], [webhook["id"]], nexus.deployment_id)
    finished = await wait_terminal(client, job["id"])

    assert (finished["status"]["overview"], finished["status"]["message"]) == (
        "Reached",
        "Finished",
    )
    assert finished["status"]["reason"] is None
    assert counters(finished) == expect(
        Gathered=8, FailedGather=2, Preprocessed=6, FailedProcess=2, Predicted=6, Delivered=6
    )

    # Every delivery was tried three times under one id; after dedup each item came once.
    attempts = receiver.at("/flaky/2")
    assert len(attempts) == 18
    assert Counter(a.id for a in attempts) == dict.fromkeys({a.id for a in attempts}, 3)
    accepted = receiver.accepted("/flaky/2")
    assert len(accepted) == 6
    assert sorted(d.json["item"]["url"] for d in accepted.values()) == sorted(good)
    for attempt in attempts:
        attempt.verify(secret)
        payload = attempt.json
        assert set(payload) >= {
            "jobId",
            "projectId",
            "item",
            "deliveryId",
            "createTime",
            "predictions",
        }
        assert payload["jobId"] == job["id"]
        assert payload["projectId"] == nexus.project_id
        assert payload["deliveryId"] == attempt.id
        assert payload["item"]["kind"] == "Image"
        assert type(payload["createTime"]) is int
    # Retries resend the very same body.
    by_id: dict[str, set[bytes]] = {}
    for attempt in attempts:
        by_id.setdefault(attempt.id, set()).add(attempt.body)
    assert all(len(bodies) == 1 for bodies in by_id.values())
    # The default predictor found the square of the tiny PNG (columns 4..9, rows 2..7 of 16).
    tiny = next(d for d in accepted.values() if d.json["item"]["url"] == TINY_PNG)
    [prediction] = tiny.json["predictions"]
    assert prediction["boundType"] == "rectangle"
    assert prediction["bound"] == [[0.25, 0.125], [0.25, 0.5], [0.625, 0.5], [0.625, 0.125]]
    assert prediction["confidence"] > 0.9

    entries = await all_logs(client, job["id"])
    for entry in entries:
        assert_log_entry_shape(entry)
    kinds = Counter(e["kind"] for e in entries)
    assert kinds == {
        "JobStarted": 1,
        "ItemGathered": 8,
        "ItemPreprocessed": 6,
        "ItemPredicted": 6,
        "ItemDelivered": 6,
        "ItemFailed": 4,
        "JobFinished": 1,
    }
    assert entries[0]["kind"] == "JobFinished"
    assert entries[-1]["kind"] == "JobStarted"
    failed = {e["item"]: e for e in entries if e["kind"] == "ItemFailed"}
    assert failed[nexus.static_url("img/missing.png")]["status"] == "FailedGather"
    assert "404" in failed[receiver.url("/img/nothing.png")]["reason"]
    assert failed[CORRUPT_PNG]["status"] == "FailedProcess"
    assert "cannot decode image" in failed[nexus.static_url("img/broken.png")]["reason"]
    assert all(e["level"] == "Error" for e in failed.values())
    ok = [e for e in entries if e["kind"] != "ItemFailed"]
    assert all(e["level"] == "Info" and e["reason"] == "" for e in ok)
    assert {e["status"] for e in entries if e["kind"] == "ItemDelivered"} == {"Delivered"}
    assert all(e["timeMs"] >= 0 for e in entries)


async def test_always_failing_webhook_ends_failed_deliver(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset = await create_dataset(client, [TINY_PNG] * 3)
    webhook = await create_webhook(client, receiver.url("/down"), max_retries=2, max_backoff_ms=5)
    job = await create_job(client, dataset["id"], [webhook["id"]], nexus.deployment_id)
    finished = await wait_terminal(client, job["id"])
    assert finished["status"]["overview"] == "Reached"
    assert counters(finished) == expect(Gathered=3, Preprocessed=3, Predicted=3, FailedDeliver=3)
    assert Counter(d.id for d in receiver.at("/down")) == dict.fromkeys(
        {d.id for d in receiver.at("/down")}, 3
    )
    assert len({d.id for d in receiver.at("/down")}) == 3
    failures = [e for e in await all_logs(client, job["id"]) if e["kind"] == "ItemFailed"]
    assert len(failures) == 3
    assert all(e["status"] == "FailedDeliver" for e in failures)
    assert all("HTTP 500 after 3 attempts" in e["reason"] for e in failures)


async def test_every_destination_gets_every_item(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset = await create_dataset(client, [TINY_PNG] * 4)
    one = await create_webhook(client, receiver.url("/one"))
    two = await create_webhook(client, receiver.url("/two"))
    down = await create_webhook(client, receiver.url("/down"), max_retries=0)
    both = await create_job(client, dataset["id"], [one["id"], two["id"]], nexus.deployment_id)
    assert counters(await wait_terminal(client, both["id"]))["Delivered"] == 4
    assert len(receiver.accepted("/one")) == len(receiver.accepted("/two")) == 4
    mixed = await create_job(client, dataset["id"], [one["id"], down["id"]], nexus.deployment_id)
    finished = await wait_terminal(client, mixed["id"])
    assert counters(finished)["FailedDeliver"] == 4
    assert counters(finished)["Delivered"] == 0


async def test_counter_invariants_hold_throughout_1000_items(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    count = 1000
    dataset_id = nexus.seed_dataset([TINY_PNG] * count)
    webhook = await create_webhook(client, receiver.url("/ok"))
    job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    samples: list[dict[str, int]] = []
    with anyio.fail_after(60):
        while True:
            current = (await client.get(f"jobs/{job['id']}")).json()
            check_invariants(current, count)
            samples.append(counters(current))
            if current["status"]["overview"] in ("Reached", "Failed"):
                break
    assert current["status"]["overview"] == "Reached"
    assert counters(current) == expect(
        Gathered=count, Preprocessed=count, Predicted=count, Delivered=count
    )
    # Counters only grow, and the run was observed in the middle, not just at the ends.
    for before, after in itertools.pairwise(samples):
        assert all(after[name] >= before[name] for name in COUNTERS)
    assert sum(1 for s in samples if 0 < s["Delivered"] < count) >= 5
    assert len(receiver.accepted("/ok")) == count


async def test_cancel_mid_run_stops_in_flight_work(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG] * 100)
    webhook = await create_webhook(client, receiver.url("/slow"))
    job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    await receiver.wait_arrivals("/slow", 16)  # 16 deliveries now hang on /slow
    assert job_task_running(job["id"])
    started = anyio.current_time()
    response = await client.patch(f"jobs/{job['id']}", json={"spec": {"stopAtTime": now_ms()}})
    # Not held up by the deliveries in flight (they would hang for `slow_seconds`).
    assert anyio.current_time() - started < receiver.slow_seconds / 2
    cancelled = response.json()
    assert cancelled["status"]["overview"] == "Failed"
    assert cancelled["status"]["message"] == "Batch job cancelled"
    assert cancelled["status"]["reason"].endswith(
        f"requested cancellation at {cancelled['status']['cancelledAt']}"
    )
    # The hanging deliveries were abandoned: the receiver sees the connections close.
    await receiver.wait_released("/slow")
    await until_job_task_ends(job["id"])  # nothing can change the job from here on
    later = (await client.get(f"jobs/{job['id']}")).json()
    assert later["status"] == cancelled["status"]
    assert counters(later)["Delivered"] == 0
    assert ended(later) < 100
    entries = (await client.get(f"jobs/{job['id']}/logs")).json()["entries"]
    assert entries[0]["kind"] == "JobCancelled"
    assert entries[0]["level"] == "Warning"
    assert entries[0]["reason"] == cancelled["status"]["reason"]


async def test_stop_time_reached_before_the_end(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG] * 20)
    webhook = await create_webhook(client, receiver.url("/slow"))
    stop = now_ms() + 400
    job = await create_job(
        client, dataset_id, [webhook["id"]], nexus.deployment_id, stopAtTime=stop
    )
    finished = await wait_terminal(client, job["id"], timeout=5)
    assert now_ms() >= stop
    status = finished["status"]
    assert status["overview"] == "Failed"
    assert status["reason"] == "BatchJob not completed before defined stop time"
    assert status["cancelledAt"] is None
    [last, *_] = (await client.get(f"jobs/{job['id']}/logs")).json()["entries"]
    assert (last["kind"], last["level"], last["status"]) == ("JobFinished", "Error", "Failed")


async def test_start_time_in_the_future(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG] * 3)
    webhook = await create_webhook(client, receiver.url("/ok"))
    start = now_ms() + 500
    job = await create_job(
        client, dataset_id, [webhook["id"]], nexus.deployment_id, startAtTime=start
    )
    # Before the start time; that nothing starts early is checked by the times below.
    waiting = (await client.get(f"jobs/{job['id']}")).json()
    assert (waiting["status"]["overview"], waiting["status"]["message"]) == ("Waiting", "Waiting")
    assert counters(waiting) == expect()
    assert (await client.get(f"jobs/{job['id']}/logs")).json()["entries"] == []
    finished = await wait_terminal(client, job["id"])
    assert finished["status"]["overview"] == "Reached"
    entries = await all_logs(client, job["id"])
    started = next(e for e in entries if e["kind"] == "JobStarted")
    assert started["createTime"] >= start
    assert all(d.json["createTime"] >= start for d in receiver.at("/ok"))


async def test_running_message_and_deleting_a_running_job(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG] * 40)
    webhook = await create_webhook(client, receiver.url("/slow"))
    job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    running = await wait_for(client, job["id"], "Predicted", 1)
    assert (running["status"]["overview"], running["status"]["message"]) == ("Waiting", "Running")
    await receiver.wait_arrivals("/slow", 16)
    deleted = await client.delete(f"jobs/{job['id']}")
    assert deleted.json() == {"id": job["id"], "deleted": True}
    assert (await client.get(f"jobs/{job['id']}")).status_code == 404
    await receiver.wait_released("/slow")  # its deliveries were cut off
    assert receiver.arrivals["/slow"] == 16


class PickyPredictor:
    """Fails on wide images, answers nonsense for tall ones, works for squares."""

    def predict(self, image: Image.Image) -> Sequence[Any]:
        width, height = image.size
        if width > height:
            raise RuntimeError("too wide for me")
        if height > width:
            return [{"annotationId": 0, "confidence": 2}]
        return [
            {
                "annotationId": 9,
                "tag": {"id": 3, "name": "square"},
                "confidence": 1,
                "boundType": "rectangle",
                "bound": [[0, 0], [0, 1], [1, 1], [1, 0]],
            }
        ]


async def test_user_predictor_and_failed_predict(receiver: Receiver) -> None:
    wide = data_url(png_bytes((20, 10)))
    tall = data_url(png_bytes((10, 20)))
    async with LocalNexus(predictor=PickyPredictor()) as nexus, api_client(nexus) as client:
        dataset_id = nexus.seed_dataset([TINY_PNG, wide, tall])
        webhook = await create_webhook(client, receiver.url("/ok"))
        job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
        finished = await wait_terminal(client, job["id"])
        assert counters(finished) == expect(
            Gathered=3, Preprocessed=3, Predicted=1, FailedPredict=2, Delivered=1
        )
        [delivery] = receiver.accepted("/ok").values()
        assert delivery.json["predictions"] == [
            {
                "annotationId": 9,
                "tag": {"id": 3, "name": "square"},
                "confidence": 1.0,
                "boundType": "rectangle",
                "bound": [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]],
            }
        ]
        reasons = {
            e["item"]: e["reason"]
            for e in await all_logs(client, job["id"])
            if e["kind"] == "ItemFailed"
        }
        assert "too wide for me" in reasons[wide]
        assert "tag" in reasons[tall]


async def test_gather_limits(receiver: Receiver) -> None:
    receiver.images["big.png"] = png_bytes((300, 300)) + b"\0" * 2000
    receiver.slow_seconds = 5
    async with (
        LocalNexus(gather_timeout=0.3, max_item_bytes=1000) as nexus,
        api_client(nexus) as client,
    ):
        urls = [
            receiver.url("/img/big.png"),
            receiver.url("/img/slow.png"),
            data_url(b"\0" * 1200),
            TINY_PNG,
        ]
        dataset_id = nexus.seed_dataset(urls)
        webhook = await create_webhook(client, receiver.url("/ok"))
        job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
        finished = await wait_terminal(client, job["id"])
        assert counters(finished)["FailedGather"] == 3
        assert counters(finished)["Delivered"] == 1
        reasons = {
            e["item"]: e["reason"]
            for e in await all_logs(client, job["id"])
            if e["kind"] == "ItemFailed"
        }
        assert "larger than 1000 bytes" in reasons[urls[0]]
        assert "timed out after 0.3 s" in reasons[urls[1]]
        assert "larger than 1000 bytes" in reasons[urls[2]]


async def test_job_concurrency_queues_jobs(receiver: Receiver) -> None:
    async with (
        LocalNexus(job_concurrency=1, item_concurrency=2) as nexus,
        api_client(nexus) as client,
    ):
        dataset_id = nexus.seed_dataset([TINY_PNG] * 4)
        slow = await create_webhook(client, receiver.url("/slow"))
        first = await create_job(client, dataset_id, [slow["id"]], nexus.deployment_id)
        second = await create_job(client, dataset_id, [slow["id"]], nexus.deployment_id)
        await receiver.wait_arrivals("/slow", 2)
        queued = (await client.get(f"jobs/{second['id']}")).json()
        assert queued["status"]["message"] == "Waiting"  # its slot is taken
        await client.patch(f"jobs/{first['id']}", json={"spec": {"stopAtTime": now_ms()}})
        await receiver.wait_arrivals("/slow", 4)
        resumed = (await client.get(f"jobs/{second['id']}")).json()
        assert resumed["status"]["message"] == "Running"
        assert (await client.get(f"jobs/{first['id']}")).json()["status"]["overview"] == "Failed"
        await client.delete(f"jobs/{second['id']}")


@pytest.mark.parametrize("per_ms", [3, 7])
async def test_log_ties_group_runner_entries(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver, per_ms: int
) -> None:
    nexus.log_ties(per_ms)
    dataset_id = nexus.seed_dataset([TINY_PNG] * 20)
    webhook = await create_webhook(client, receiver.url("/ok"))
    job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    await wait_terminal(client, job["id"])
    entries = await all_logs(client, job["id"])
    assert len(entries) == 20 * 4 + 2
    sizes = Counter(e["createTime"] for e in entries)
    ordered = [sizes[t] for t in sorted(sizes)]
    assert ordered[:-1] == [per_ms] * (len(ordered) - 1)
    assert 1 <= ordered[-1] <= per_ms
    keys = [(e["createTime"], e["id"]) for e in entries]
    assert keys == sorted(keys, reverse=True)


def test_static_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`static_dir` must be an existing directory"):
        LocalNexus(static_dir=tmp_path / "missing")


async def test_empty_dataset_finishes_at_once(nexus: LocalNexus, client: httpx.AsyncClient) -> None:
    dataset = await create_dataset(client, [])
    assert dataset["status"]["itemCount"] == 0
    webhook_id = nexus.seed_webhook("http://127.0.0.1:9/x")
    job = await create_job(client, dataset["id"], [webhook_id], nexus.deployment_id)
    finished = await wait_terminal(client, job["id"], timeout=5)
    assert (finished["status"]["overview"], finished["status"]["message"]) == (
        "Reached",
        "Finished",
    )
    assert counters(finished) == expect()
    assert [e["kind"] for e in await all_logs(client, job["id"])] == ["JobFinished", "JobStarted"]


async def test_stop_time_already_past_fails_at_once(
    nexus: LocalNexus, client: httpx.AsyncClient
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG])
    webhook_id = nexus.seed_webhook("http://127.0.0.1:9/x")
    now = now_ms()
    job = await create_job(
        client,
        dataset_id,
        [webhook_id],
        nexus.deployment_id,
        startAtTime=now - 2000,
        stopAtTime=now - 1000,
    )
    finished = await wait_terminal(client, job["id"], timeout=5)
    assert finished["status"]["overview"] == "Failed"
    assert finished["status"]["reason"] == "BatchJob not completed before defined stop time"
    assert ended(finished) == 0


async def test_jobs_outlive_their_dataset_but_not_their_webhook(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset = await create_dataset(client, [TINY_PNG] * 30)
    slow = await create_webhook(client, receiver.url("/slow"))
    ok = await create_webhook(client, receiver.url("/ok"))
    job = await create_job(client, dataset["id"], [ok["id"]], nexus.deployment_id)
    assert (await client.delete(f"datasets/{dataset['id']}")).status_code == 200
    assert counters(await wait_terminal(client, job["id"]))["Delivered"] == 30  # a snapshot

    receiver.slow_seconds = 0.5
    dataset_id = nexus.seed_dataset([TINY_PNG] * 30)
    job = await create_job(client, dataset_id, [slow["id"]], nexus.deployment_id)
    await receiver.wait_arrivals("/slow", 16)  # these are answered 200 after 0.5 s
    assert (await client.delete(f"webhooks/{slow['id']}")).status_code == 200
    finished = await wait_terminal(client, job["id"], timeout=15)
    assert counters(finished)["Delivered"] == 16
    assert counters(finished)["FailedDeliver"] == 14
    reasons = {e["reason"] for e in await all_logs(client, job["id"]) if e["kind"] == "ItemFailed"}
    assert any("no longer exists" in r for r in reasons)


async def test_an_unusable_item_url_costs_one_item_not_the_runner(
    nexus: LocalNexus, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    dataset_id = nexus.seed_dataset([TINY_PNG, TINY_PNG])
    # Slip past validation, as a URL that parses but cannot be fetched would.
    nexus.store.projects[nexus.project_id].dataset(dataset_id).items[0] = "http://[::1"
    webhook = await create_webhook(client, receiver.url("/ok"))
    job = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    finished = await wait_terminal(client, job["id"])
    assert counters(finished) == expect(
        Gathered=1, FailedGather=1, Preprocessed=1, Predicted=1, Delivered=1
    )
    [failure] = [e for e in await all_logs(client, job["id"]) if e["kind"] == "ItemFailed"]
    assert failure["reason"].startswith("cannot fetch item: InvalidURL")
    again = await create_job(client, dataset_id, [webhook["id"]], nexus.deployment_id)
    assert (await wait_terminal(client, again["id"]))["status"]["overview"] == "Reached"
