"""Receiving results: signature checks, parsing, and the ready receiver."""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
import unittest.mock
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import attrs
import cattrs.preconf.json
import httpx
import pytest
from cattrs.gen import make_dict_structure_fn
from standardwebhooks.webhooks import Webhook as ReferenceWebhook

from nexus_async import (
    Dataset,
    Delivery,
    DeliveryDecodeError,
    DeliveryReceiver,
    ValidationError,
    Webhook,
    WebhookSignatureError,
    WebhookTestResponse,
    parse_delivery,
    receiver,
    signing,
    verify_delivery,
)
from nexus_async._convert import _renames, structure, unstructure
from nexus_async.server import serve_asgi

from . import wire_batch as wire
from .batch_live import POLL, live, write_ndjson

SECRET = base64.b64encode(bytes(range(32))).decode()
NEW_SECRET = base64.b64encode(bytes(range(100, 132))).decode()


def test_delivery_round_trip_is_lossless() -> None:
    for data in (wire.DELIVERY, wire.delivery(predictions=[])):
        assert unstructure(structure(data, Delivery)) == data


def test_delivery_fields_are_snake_case() -> None:
    delivery = structure(wire.DELIVERY, Delivery)
    (prediction,) = delivery.predictions
    assert delivery.delivery_id == wire.DELIVERY["deliveryId"]
    assert delivery.item.url.endswith("36.jpg")
    assert prediction.annotation_id == 0
    assert prediction.tag.name == "RBC"
    assert prediction.bound_type == "rectangle"
    assert prediction.bound[1] == [0.25, 0.75]


def test_every_field_of_the_new_models_is_renamed() -> None:
    """A strict twin that forbids unknown keys catches a field the renames missed."""
    strict = cattrs.preconf.json.make_converter(forbid_extra_keys=True)
    strict.register_structure_hook_factory(
        attrs.has,
        lambda cl: make_dict_structure_fn(
            cl, strict, _cattrs_forbid_extra_keys=True, **_renames(cl)
        ),
    )
    strict.structure(wire.DATASET, Dataset)
    strict.structure(wire.WEBHOOK, Webhook)
    strict.structure(wire.WEBHOOK_TEST, WebhookTestResponse)
    strict.structure(wire.DELIVERY, Delivery)


# ------------------------------------------------------------------- verify


def test_verify_delivery_returns_the_parsed_delivery() -> None:
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    delivery = verify_delivery(SECRET, raw, headers)
    assert delivery == structure(wire.DELIVERY, Delivery)


def test_header_names_are_case_insensitive() -> None:
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    shouting = {k.title(): v for k, v in headers.items()}
    assert verify_delivery(SECRET, raw, shouting).delivery_id == wire.DELIVERY["deliveryId"]


def test_a_delivery_signed_by_the_reference_library_verifies() -> None:
    raw = json.dumps(wire.DELIVERY)
    now = datetime.now(tz=timezone.utc)
    ident = wire.DELIVERY["deliveryId"]
    headers = {
        "webhook-id": ident,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": ReferenceWebhook(SECRET).sign(ident, now, raw),
    }
    assert verify_delivery(SECRET, raw, headers).delivery_id == ident


def test_our_receiver_headers_verify_with_the_reference_library() -> None:
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    assert (
        ReferenceWebhook(SECRET).verify(raw, headers)["deliveryId"] == wire.DELIVERY["deliveryId"]
    )


def _tamper(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return raw.replace(b"0.87", b"0.99"), headers


def _stale(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return wire.signed(SECRET, json.loads(raw), timestamp=int(time.time()) - 301)


def _future(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return wire.signed(SECRET, json.loads(raw), timestamp=int(time.time()) + 301)


def _wrong_secret(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return wire.signed(NEW_SECRET, json.loads(raw))


def _other_id(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return raw, {**headers, "webhook-id": "delivery_other"}


def _drop(name: str) -> Any:
    def change(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return raw, {k: v for k, v in headers.items() if k != name}

    return change


def _set(name: str, value: str) -> Any:
    def change(raw: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return raw, {**headers, name: value}

    return change


REJECTED = [
    pytest.param(_tamper, "does not match", id="tampered-body"),
    pytest.param(_wrong_secret, "does not match", id="wrong-secret"),
    pytest.param(_stale, "away from now", id="stale-timestamp"),
    pytest.param(_future, "away from now", id="future-timestamp"),
    pytest.param(_other_id, "does not match", id="other-webhook-id"),
    pytest.param(_drop("webhook-signature"), "`webhook-signature` header is missing", id="no-sig"),
    pytest.param(_drop("webhook-id"), "`webhook-id` header is missing", id="no-id"),
    pytest.param(_drop("webhook-timestamp"), "`webhook-timestamp` header", id="no-timestamp"),
    pytest.param(_set("webhook-timestamp", "soon"), "not an integer", id="bad-timestamp"),
    pytest.param(_set("webhook-signature", "v1,???"), "no v1 signature", id="garbage-sig"),
    pytest.param(_set("webhook-signature", "v2,AAAA"), "no v1 signature", id="other-scheme"),
]


@pytest.mark.parametrize(("change", "match"), REJECTED)
def test_bad_signatures_are_rejected(change: Any, match: str) -> None:
    raw, headers = change(*wire.signed(SECRET, wire.DELIVERY))
    with pytest.raises(WebhookSignatureError, match=match):
        verify_delivery(SECRET, raw, headers)


def test_several_secrets_are_accepted_while_rotating() -> None:
    old = wire.signed(SECRET, wire.DELIVERY)
    new = wire.signed(NEW_SECRET, wire.DELIVERY)
    for raw, headers in (old, new):
        verify_delivery([NEW_SECRET, SECRET], raw, headers)
    with pytest.raises(WebhookSignatureError):
        verify_delivery([NEW_SECRET], *old)


def test_the_tolerance_and_clock_can_be_set() -> None:
    raw, headers = wire.signed(SECRET, wire.DELIVERY, timestamp=1_000)
    verify_delivery(SECRET, raw, headers, now=1_030, tolerance=60)
    with pytest.raises(WebhookSignatureError):
        verify_delivery(SECRET, raw, headers, now=1_100, tolerance=60)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a delivery"),
        (json.dumps(wire.delivery(predictions=None)).encode(), r"\$\.predictions"),
        (json.dumps(wire.delivery(createTime="now")).encode(), r"\$\.create_time"),
        (json.dumps({k: v for k, v in wire.DELIVERY.items() if k != "item"}).encode(), "item"),
    ],
)
def test_a_genuine_body_that_is_not_a_delivery_is_a_decode_error(body: bytes, match: str) -> None:
    with pytest.raises(DeliveryDecodeError, match=match):
        parse_delivery(body)
    raw, headers = wire.signed(SECRET, body)
    with pytest.raises(DeliveryDecodeError, match=match):
        verify_delivery(SECRET, raw, headers)


def test_unknown_delivery_fields_are_ignored() -> None:
    data = {**wire.DELIVERY, "test": True, "attempt": 2}
    assert parse_delivery(json.dumps(data)) == structure(wire.DELIVERY, Delivery)


# ------------------------------------------------------------------ receiver


class Inbox:
    """An `on_delivery` callback that records what it got; `block` holds it until `release`."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.block = False
        self._release: anyio.Event | None = None
        self._arrived: anyio.Event | None = None

    def release(self) -> None:
        self.block = False
        if self._release is not None:
            self._release.set()

    async def __call__(self, delivery: Delivery) -> None:
        if self.block:
            self._release = self._release or anyio.Event()
            await self._release.wait()
        self.deliveries.append(delivery)
        if self._arrived is not None:
            self._arrived.set()

    async def settle(self, count: int) -> None:
        """Wait (at most 5 s) until `count` deliveries have arrived."""
        with anyio.fail_after(5):
            while len(self.deliveries) < count:
                self._arrived = anyio.Event()
                await self._arrived.wait()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def make_receiver(inbox: Inbox) -> Any:
    def make(**options: Any) -> DeliveryReceiver:
        return DeliveryReceiver(SECRET, inbox, **options)

    return make


def http(target: DeliveryReceiver, path: str = "/hook") -> httpx.AsyncClient:
    # ASGITransport never runs the lifespan: the tests enter `receiver.running()` themselves.
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=target.app(path)), base_url="http://receiver.test"
    )


async def post(client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    raw, headers = wire.signed(SECRET, body, **kwargs)
    return await client.post("/hook", content=raw, headers=headers)


async def test_a_delivery_is_acknowledged_and_handed_over_once(
    make_receiver: Any, inbox: Inbox
) -> None:
    target = make_receiver()
    async with target.running(), http(target) as client:
        first = await post(client, wire.DELIVERY)
        again = await post(client, wire.DELIVERY)  # the API's retry: a fresh timestamp
        other = await post(client, wire.delivery(deliveryId="delivery_2"))
        await inbox.settle(2)
    # Leaving `running()` drained the queue: a duplicate handed over would be here now.
    assert (first.status_code, first.json()) == (
        200,
        {"deliveryId": wire.DELIVERY["deliveryId"], "duplicate": False},
    )
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert other.status_code == 200
    assert [d.delivery_id for d in inbox.deliveries] == [
        wire.DELIVERY["deliveryId"],
        "delivery_2",
    ]


@pytest.mark.parametrize(("change", "match"), REJECTED)
async def test_the_receiver_answers_401_to_bad_signatures(
    make_receiver: Any, inbox: Inbox, change: Any, match: str
) -> None:
    target = make_receiver()
    raw, headers = change(*wire.signed(SECRET, wire.DELIVERY))
    async with target.running(), http(target) as client:
        response = await client.post("/hook", content=raw, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"].startswith("signature rejected")
    assert inbox.deliveries == []


async def test_the_receiver_answers_400_413_and_405(make_receiver: Any, inbox: Inbox) -> None:
    target = make_receiver(max_body_bytes=4096)
    async with target.running(), http(target) as client:
        bad = await post(client, b'{"deliveryId": "delivery_x"}')
        big = await post(client, wire.delivery(deliveryId="d" * 5000))
        get = await client.get("/hook")
    assert bad.status_code == 400
    assert "not a delivery" in bad.json()["message"]
    assert big.status_code == 413
    assert get.status_code == 405
    assert inbox.deliveries == []


async def test_a_stopped_receiver_answers_503_and_takes_the_retry_later(
    make_receiver: Any, inbox: Inbox
) -> None:
    target = make_receiver()
    async with http(target) as client:
        refused = await post(client, wire.DELIVERY)
        async with target.running():
            accepted = await post(client, wire.DELIVERY)
            await inbox.settle(1)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert (accepted.status_code, accepted.json()["duplicate"]) == (200, False)


async def test_a_full_queue_answers_503_without_remembering_the_delivery(
    make_receiver: Any, inbox: Inbox
) -> None:
    target = make_receiver(concurrency=1, max_pending=1)
    inbox.block = True
    async with target.running(), http(target) as client:
        await anyio.wait_all_tasks_blocked()
        statuses = []
        for i in range(3):
            statuses.append((await post(client, wire.delivery(deliveryId=f"d{i}"))).status_code)
            await anyio.wait_all_tasks_blocked()
        assert statuses == [200, 200, 503]  # one in the callback, one queued, one refused
        inbox.release()
        await inbox.settle(2)
        retried = await post(client, wire.delivery(deliveryId="d2"))
        await inbox.settle(3)
    assert (retried.status_code, retried.json()["duplicate"]) == (200, False)
    assert [d.delivery_id for d in inbox.deliveries] == ["d0", "d1", "d2"]


async def test_a_failing_callback_is_logged_and_the_workers_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = Inbox()

    async def flaky(delivery: Delivery) -> None:
        await inbox(delivery)
        if delivery.delivery_id == "boom":
            raise RuntimeError("database down")

    target = DeliveryReceiver(SECRET, flaky, concurrency=1)
    with caplog.at_level(logging.ERROR, logger="nexus_async"):
        async with target.running(), http(target) as client:
            for ident in ("boom", "fine"):
                assert (await post(client, wire.delivery(deliveryId=ident))).status_code == 200
            await inbox.settle(2)
    assert [d.delivery_id for d in inbox.deliveries] == ["boom", "fine"]
    assert "on_delivery failed for delivery boom" in caplog.text


async def test_leaving_running_drains_the_queue(make_receiver: Any, inbox: Inbox) -> None:
    target = make_receiver(concurrency=1)
    async with http(target) as client:
        async with target.running():
            for i in range(5):
                assert (await post(client, wire.delivery(deliveryId=f"d{i}"))).status_code == 200
        assert len(inbox.deliveries) == 5
        assert (await post(client, wire.delivery(deliveryId="late"))).status_code == 503


async def test_rotating_the_receivers_secrets(make_receiver: Any, inbox: Inbox) -> None:
    target = make_receiver()
    new_raw, new_headers = wire.signed(NEW_SECRET, wire.delivery(deliveryId="new"))
    async with target.running(), http(target) as client:
        before = await client.post("/hook", content=new_raw, headers=new_headers)
        target.secrets = [NEW_SECRET, SECRET]
        during_old = await post(client, wire.delivery(deliveryId="old"))
        during_new = await client.post("/hook", content=new_raw, headers=new_headers)
        target.secrets = NEW_SECRET
        after_old = await post(client, wire.delivery(deliveryId="old-2"))
    assert [r.status_code for r in (before, during_old, during_new, after_old)] == [
        401,
        200,
        200,
        401,
    ]


def test_recent_ids_are_bounded_by_size_and_age() -> None:
    clock = [1000.0]
    recent = receiver._RecentIds(max_size=3, ttl=60.0, clock=lambda: clock[0])
    for ident in "abcd":
        recent.add(ident)
    assert len(recent) == 3
    assert "a" not in recent
    assert "d" in recent
    clock[0] += 61
    assert "d" not in recent
    assert len(recent) == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("not base64!",), {}, "`secret` must be valid base64"),
        (([],), {}, "non-empty list"),
        (([SECRET, "short"],), {}, r"`secret\[1\]`"),
        ((SECRET,), {"concurrency": 0}, "`concurrency`"),
        ((SECRET,), {"max_pending": True}, "`max_pending`"),
        ((SECRET,), {"remember": -1}, "`remember`"),
        ((SECRET,), {"tolerance": 0}, "`tolerance`"),
        ((SECRET,), {"remember_for": "1d"}, "`remember_for`"),
    ],
)
def test_bad_receiver_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    async def noop(delivery: Delivery) -> None:
        pass

    with pytest.raises(ValidationError, match=match):
        DeliveryReceiver(args[0], noop, **kwargs)


async def test_an_error_in_the_running_block_comes_out_as_is(
    make_receiver: Any, inbox: Inbox
) -> None:
    target = make_receiver()
    with pytest.raises(KeyError, match="boom"):
        async with target.running(), http(target) as client:
            assert (await post(client, wire.DELIVERY)).status_code == 200
            raise KeyError("boom")
    assert len(inbox.deliveries) == 1  # what was acknowledged was still handed over


async def test_cancelling_from_outside_stops_the_receiver_promptly(make_receiver: Any) -> None:
    target = make_receiver()
    with anyio.fail_after(5), anyio.move_on_after(0.05) as scope:
        async with target.running():
            await anyio.sleep(10)
    assert scope.cancelled_caught
    assert "stopped" in repr(target)


async def test_running_twice_is_refused(make_receiver: Any) -> None:
    target = make_receiver()
    async with target.running():
        with pytest.raises(RuntimeError, match="already running"):
            async with target.running():
                pass


async def test_handle_is_framework_neutral(make_receiver: Any, inbox: Inbox) -> None:
    target = make_receiver()
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    async with target.running():
        answer = target.handle(raw, headers)
        await inbox.settle(1)
    assert (answer.status, answer.body["duplicate"]) == (200, False)


async def test_the_app_serves_over_real_http_with_its_lifespan(inbox: Inbox) -> None:
    app = receiver.receiver_app(SECRET, inbox, path="/webhooks/nexus")
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    refused = [change(raw, headers) for change in (_tamper, _wrong_secret, _stale)]
    with anyio.fail_after(10):
        async with serve_asgi(app) as url, httpx.AsyncClient(base_url=url) as client:
            good = await client.post("/webhooks/nexus", content=raw, headers=headers)
            bad = [
                (await client.post("/webhooks/nexus", content=body, headers=h)).status_code
                for body, h in refused
            ]
            await inbox.settle(1)
    assert good.status_code == 200
    assert bad == [401, 401, 401]  # tampered body, wrong secret, stale timestamp
    assert [d.delivery_id for d in inbox.deliveries] == [wire.DELIVERY["deliveryId"]]


# ------------------------------------------------------- hostile senders, shutdown


class Watched:
    """An ASGI app wrapper that records what escapes each HTTP request and signals its end."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.escaped: list[BaseException] = []
        self.finished = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            self.escaped.append(exc)
            raise
        finally:
            if scope["type"] == "http":
                self.finished.set()


async def test_a_sender_disconnecting_mid_body_is_quiet(
    make_receiver: Any, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Half a body, then the socket closes: no traceback, no ERROR, nothing acknowledged."""
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /hook HTTP/1.1\r\nhost: receiver\r\n{head}content-length: {len(raw)}\r\n\r\n"
    ).encode() + raw[: len(raw) // 2]
    app = Watched(make_receiver().app("/hook"))
    with caplog.at_level(logging.DEBUG), anyio.fail_after(10):
        async with serve_asgi(app) as url:
            port = int(url.rsplit(":", 1)[1])
            async with await anyio.connect_tcp("127.0.0.1", port) as sock:
                await sock.send(request)
            await app.finished.wait()
    assert app.escaped == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "a sender disconnected after" in caplog.text
    assert inbox.deliveries == []


HOSTILE_TIMESTAMPS = [
    pytest.param("\u00b2", id="superscript-two"),
    pytest.param("\u0663" * 10, id="arabic-indic-digits"),
    pytest.param("9" * 5000, id="5000-digits"),
    pytest.param("1" * 13, id="13-digits"),
    pytest.param("1e9", id="exponent"),
]


@pytest.mark.parametrize("timestamp", HOSTILE_TIMESTAMPS)
async def test_a_hostile_timestamp_is_401_before_any_signature_work(
    make_receiver: Any, inbox: Inbox, monkeypatch: pytest.MonkeyPatch, timestamp: str
) -> None:
    def no_signing(*args: object) -> bytes:
        raise AssertionError("the signature was computed for a malformed timestamp")

    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    monkeypatch.setattr(signing, "_digest", no_signing)
    hostile = {**headers, "webhook-timestamp": timestamp}
    target = make_receiver()
    async with target.running(), http(target) as client:
        answers = [target.handle(raw, hostile)]  # as any framework would call it
        if timestamp.isascii() or timestamp == "\u00b2":
            # Over HTTP a header is bytes, which Starlette reads as latin-1.
            response = await client.post(
                "/hook",
                content=raw,
                headers=[
                    (k.encode(), v.encode()) for k, v in headers.items() if k != "webhook-timestamp"
                ]
                + [(b"webhook-timestamp", timestamp.encode("latin-1"))],
            )
            answers.append(receiver.ReceiverResponse(response.status_code, response.json()))
    for answer in answers:
        assert answer.status == 401
        assert "not an integer" in answer.body["message"]
        assert len(answer.body["message"]) < 200  # 5,000 digits are not echoed back whole
    assert inbox.deliveries == []


@pytest.mark.parametrize("timestamp", [float("inf"), float("-inf"), float("nan")])
def test_a_timestamp_that_is_not_a_finite_number_is_a_signature_error(timestamp: float) -> None:
    raw, headers = wire.signed(SECRET, wire.DELIVERY)
    with pytest.raises(signing.SignatureError, match="not an integer"):
        signing.verify(SECRET, "delivery_1", timestamp, raw, headers["webhook-signature"])


async def test_a_cancelled_receiver_still_hands_over_what_it_acknowledged(
    make_receiver: Any, inbox: Inbox
) -> None:
    """Deliveries answered 200 must reach the callback even when the block is cancelled."""
    target = make_receiver(concurrency=1)
    inbox.block = True
    with anyio.fail_after(10), anyio.CancelScope() as scope:
        async with target.running(), http(target) as client:
            for i in range(10):
                assert (await post(client, wire.delivery(deliveryId=f"d{i}"))).status_code == 200
            inbox.release()
            scope.cancel()
            await anyio.sleep_forever()
    assert [d.delivery_id for d in inbox.deliveries] == [f"d{i}" for i in range(10)]


async def test_what_the_drain_timeout_leaves_is_logged_as_dropped(
    inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    started = anyio.Event()

    async def stuck(delivery: Delivery) -> None:
        started.set()
        await anyio.sleep_forever()

    target = DeliveryReceiver(SECRET, stuck, concurrency=1, drain_timeout=0.2)
    with caplog.at_level(logging.ERROR, logger="nexus_async"), anyio.fail_after(10):
        async with target.running(), http(target) as client:
            for i in range(10):
                assert (await post(client, wire.delivery(deliveryId=f"d{i}"))).status_code == 200
            await started.wait()
    (record,) = [r for r in caplog.records if "dropped at shutdown" in r.getMessage()]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert message.startswith("10 acknowledged deliveries dropped")
    # The one cut off inside the callback first, then the nine still queued.
    assert message.endswith(": " + ", ".join(f"d{i}" for i in range(10)))


def _sync_callback(delivery: Delivery) -> None:
    pass


class _SyncCallable:
    def __call__(self, delivery: Delivery) -> None:
        pass


class _AsyncCallable:
    async def __call__(self, delivery: Delivery) -> None:
        pass

    async def method(self, delivery: Delivery) -> None:
        pass


@pytest.mark.parametrize(
    "callback",
    [_sync_callback, _SyncCallable(), lambda delivery: None, print, None, "store"],
    ids=["function", "callable-object", "lambda", "builtin", "none", "string"],
)
def test_a_callback_that_is_not_async_is_refused_at_construction(callback: Any) -> None:
    with pytest.raises(ValidationError, match=r"`on_delivery` must be an async function"):
        DeliveryReceiver(SECRET, callback)
    with pytest.raises(ValidationError, match=r"`on_delivery` must be an async function"):
        receiver.receiver_app(SECRET, callback)


async def _async_callback(delivery: Delivery, tag: str = "") -> None:
    pass


@pytest.mark.parametrize(
    "callback",
    [
        _async_callback,
        functools.partial(_async_callback, tag="x"),
        _AsyncCallable(),
        _AsyncCallable().method,
        unittest.mock.AsyncMock(),
    ],
    ids=["function", "partial", "callable-object", "bound-method", "async-mock"],
)
def test_async_callbacks_of_every_shape_are_accepted(callback: Any) -> None:
    assert "stopped" in repr(DeliveryReceiver(SECRET, callback))


def test_importing_the_receiver_does_not_import_starlette() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nexus_async, nexus_async.receiver;"
        "assert 'starlette' not in sys.modules, 'starlette imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------- live, against LocalNexus


async def test_live_full_flow_every_item_arrives_once_verified(tmp_path: Path) -> None:
    """Images -> NDJSON -> dataset -> webhook -> job -> each result received once."""
    count = 6
    inbox = Inbox()
    rejected: list[int] = []

    class Counting(DeliveryReceiver):
        def handle(self, body: bytes, headers: Mapping[str, str]) -> receiver.ReceiverResponse:
            answer = super().handle(body, headers)
            if answer.status != 200:
                rejected.append(answer.status)
            return answer

    # The receiver is deployed before the webhook exists; it learns the secret after.
    target = Counting(signing.generate_secret(), inbox)
    with anyio.fail_after(30):
        async with (
            live(tmp_path, images=count) as (nexus, batch),
            serve_asgi(target.app("/results")) as url,
        ):
            urls = [nexus.static_url(f"item-{i}.png") for i in range(count)]
            dataset = await batch.datasets.create(
                "flow", write_ndjson(tmp_path / "items.ndjson", urls)
            )
            webhook = await batch.webhooks.create("flow", {"endpoint": url + "/results"})
            target.secrets = webhook.secret  # the SDK-generated secret the API signs with
            await batch.datasets.wait_until_done(dataset.id, **POLL)

            job = await batch.jobs.create(
                "flow",
                {
                    "dataset_id": dataset.id,
                    "webhook_id": webhook.id,
                    "deployment_id": nexus.deployment_id,
                },
            )
            done = await batch.jobs.wait_until_done(job.id, interval=0.05, timeout=20)
            await inbox.settle(count)

    items = done.status.items
    assert str(done.status.overview) == "Reached"
    assert (items.gathered, items.predicted, items.delivered) == (count, count, count)
    assert items.failed_deliver == 0
    assert rejected == []  # every delivery carried a valid signature
    assert len(inbox.deliveries) == count
    assert len({d.delivery_id for d in inbox.deliveries}) == count
    assert sorted(d.item.url for d in inbox.deliveries) == sorted(urls)
    assert all(d.predictions for d in inbox.deliveries)  # each image has a white square
    for delivery in inbox.deliveries:
        assert delivery.job_id == job.id
        assert delivery.project_id == nexus.project_id
        for prediction in delivery.predictions:
            assert len(prediction.bound) == 4
            assert all(0.0 <= v <= 1.0 for point in prediction.bound for v in point)
