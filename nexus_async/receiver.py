"""Receiving results: verify and parse deliveries, and a ready receiver for ASGI services.

A batch job POSTs each result to its webhook, signed in the Standard Webhooks scheme
(see `nexus_async.signing`). Two layers:

* `verify_delivery(secret, body, headers)` checks the signature (constant-time, with
  a timestamp tolerance, accepting several secrets while one is rotated) and parses
  the body into a `Delivery`; `parse_delivery(body)` only parses. Use them in any
  web framework.
* `DeliveryReceiver` does the rest of a receiver's job: it drops duplicate
  `deliveryId`s (the API retries until it gets a 2xx), answers at once, and hands
  each new delivery to your async callback in worker tasks it owns. `.app()` is a
  ready Starlette app; `.route()` and `.lifespan` plug it into your own Starlette
  or FastAPI app. Starlette (the `server` extra) is imported only when asked for.

Delivery semantics: a delivery is acknowledged (200) once it is verified and queued,
before the callback runs, so the API is never kept waiting on your processing. If
the callback raises, the error is logged and the delivery is not retried by the
API: make the callback store the result somewhere durable first. While the queue
is full (or the receiver is not running), deliveries get 503 and the API retries
them later, as it does when a sender disconnects mid-body; nothing is lost. On
shutdown, acknowledged deliveries are still handed over (within `drain_timeout`).

Several replicas: pass a shared `dedupe` store (`RedisDedupe`, or `MemoryDedupe`
for one process). Then a delivery ID is claimed with a short lease before the
callback runs and marked done after it returns, and the answer waits for the
callback: 200 once done (and for a delivery already done), 500 if the callback
raised (the claim is released, so the API's retry is taken by some replica), 503
while another replica holds the claim (a replica that died lets its lease lapse).
Each delivery reaches the callback once when callbacks succeed, and is never lost
when one fails. Done marks are kept for the signature tolerance plus a margin:
the API's retries of a delivery end within it.
"""

from __future__ import annotations

import collections
import enum
import inspect
import json
import logging
import secrets as _secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import attrs

from . import signing
from ._convert import DecodeFailure, structure
from ._validate import check_secret
from .errors import DeliveryDecodeError, ValidationError, WebhookSignatureError
from .models import Delivery

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from redis.asyncio import Redis
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from ._client import AsyncClient
    from ._waiting import Wakeups

__all__ = [
    "Claim",
    "DedupeStore",
    "DeliveryReceiver",
    "MemoryDedupe",
    "ReceiverResponse",
    "RedisDedupe",
    "parse_delivery",
    "receiver_app",
    "verify_delivery",
]

logger = logging.getLogger("nexus_async")

OnDelivery = Callable[[Delivery], Awaitable[None]]
Secrets = str | Sequence[str]

_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        # Plain dicts keep the sender's capitalisation; HTTP header names are case-insensitive.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None:
        raise WebhookSignatureError(f"the `{name}` header is missing")
    return value


def parse_delivery(body: bytes | str) -> Delivery:
    """Parse a delivery body (JSON) into a `Delivery`, without checking any signature.

    Raises:
        DeliveryDecodeError: the body is not JSON or not shaped like a delivery.
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise DeliveryDecodeError(f"the delivery body is not JSON ({exc})") from None
    try:
        return structure(data, Delivery)
    except DecodeFailure as exc:
        message = str(exc).replace("unexpected response shape", "not a delivery")
        raise DeliveryDecodeError(message) from exc


def verify_delivery(
    secret: Secrets,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance: float = signing.DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Delivery:
    """Check a delivery's signature and parse it.

    Args:
        secret: The webhook's secret (`CreatedWebhook.secret`), or several (new and
            old while rotating): a signature made with any of them is accepted.
        body: The raw request body, exactly as received (not re-serialised JSON).
        headers: The request headers (any mapping; names are matched case-insensitively).
        tolerance: Largest distance in seconds between `webhook-timestamp` and now
            (default 300), which bounds how long a captured request can be replayed.
        now: The current time (epoch seconds), for tests; default `time.time()`.

    Returns:
        The verified `Delivery`.

    Raises:
        WebhookSignatureError: a signature header is missing, the timestamp is stale
            or malformed, or no signature matches.
        DeliveryDecodeError: the signature is good but the body is not a delivery.

    Example:
        delivery = verify_delivery(secret, await request.body(), request.headers)
    """
    msg_id, timestamp, signature = (_header(headers, name) for name in _HEADERS)
    try:
        signing.verify(secret, msg_id, timestamp, body, signature, tolerance=tolerance, now=now)
    except signing.SignatureError as exc:
        raise WebhookSignatureError(str(exc)) from exc
    return parse_delivery(body)


class _RecentIds:
    """Delivery IDs seen lately: at most `max_size`, each kept at most `ttl` seconds.

    Insertion order is time order, so expired and surplus IDs are both at the front.
    """

    def __init__(
        self, max_size: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_size = max_size
        self.ttl = ttl
        self._clock = clock
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen and (len(seen) > self.max_size or next(iter(seen.values())) <= now - self.ttl):
            seen.popitem(last=False)

    def __contains__(self, ident: str) -> bool:
        self._expire(self._clock())
        return ident in self._seen

    def add(self, ident: str) -> None:
        now = self._clock()
        self._seen[ident] = now
        self._expire(now)


DONE_MARGIN = 60.0
"""Seconds a done mark outlives the signature tolerance."""


class Claim(enum.Enum):
    """What claiming a delivery ID found."""

    NEW = "new"
    """Claimed: this replica runs the callback."""
    DONE = "done"
    """Handled already: a duplicate."""
    HELD = "held"
    """Another replica is handling it (its lease has not lapsed)."""


class DedupeStore(Protocol):
    """Where replicas of a receiver record the deliveries they claimed and finished."""

    async def claim(self, delivery_id: str, token: str, lease: float) -> Claim:
        """Claim the ID for `lease` seconds under `token`, unless it is claimed or done."""
        ...

    async def done(self, delivery_id: str, keep: float) -> None:
        """Mark the ID done for `keep` seconds."""
        ...

    async def release(self, delivery_id: str, token: str) -> None:
        """Drop the claim made under `token` (not anyone else's), so a retry is taken."""
        ...


class MemoryDedupe:
    """A `DedupeStore` in this process's memory: claims and done marks expire on time.

    Args:
        max_size: Most IDs kept (the oldest go first).
        clock: Seconds, monotonic; for tests.
    """

    def __init__(
        self, max_size: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_size = max_size
        self._clock = clock
        # id -> (token, or None once done; expiry)
        self._entries: collections.OrderedDict[str, tuple[str | None, float]] = (
            collections.OrderedDict()
        )

    def _live(self, delivery_id: str) -> tuple[str | None, float] | None:
        entry = self._entries.get(delivery_id)
        if entry is not None and entry[1] <= self._clock():
            del self._entries[delivery_id]
            return None
        return entry

    def _put(self, delivery_id: str, token: str | None, seconds: float) -> None:
        self._entries.pop(delivery_id, None)
        self._entries[delivery_id] = (token, self._clock() + seconds)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)

    async def claim(self, delivery_id: str, token: str, lease: float) -> Claim:
        entry = self._live(delivery_id)
        if entry is not None:
            return Claim.DONE if entry[0] is None else Claim.HELD
        self._put(delivery_id, token, lease)
        return Claim.NEW

    async def done(self, delivery_id: str, keep: float) -> None:
        self._put(delivery_id, None, keep)

    async def release(self, delivery_id: str, token: str) -> None:
        entry = self._live(delivery_id)
        if entry is not None and entry[0] == token:
            del self._entries[delivery_id]


_DONE = "done"
# Delete the key only if it still holds this claim's token: a lapsed lease may have
# been taken by another replica meanwhile.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisDedupe:
    """A `DedupeStore` in Redis, shared by every replica (the `redis` extra).

    A claim is `SET key token NX PX lease`; done is `SET key "done" PX keep`; a
    release deletes the key only while it holds the claim's token. Uses redis-py's
    asyncio client, so it runs under asyncio (not trio).

    Args:
        client: A `redis.asyncio.Redis` (e.g. `Redis.from_url("redis://host:6379/0")`);
            its lifetime is the caller's.
        prefix: Key prefix, to share a database with other users.

    Example:
        from redis.asyncio import Redis

    from ._client import AsyncClient
    from ._waiting import Wakeups
        store = RedisDedupe(Redis.from_url(os.environ["REDIS_URL"]))
        receiver = DeliveryReceiver(secret, on_delivery, dedupe=store)
    """

    def __init__(self, client: Redis, *, prefix: str = "nexus-async:delivery:") -> None:
        self._redis = client
        self._prefix = prefix

    async def claim(self, delivery_id: str, token: str, lease: float) -> Claim:
        key = self._prefix + delivery_id
        if await self._redis.set(key, token, nx=True, px=_ms(lease)):
            return Claim.NEW
        value = await self._redis.get(key)
        return Claim.DONE if value in (_DONE, _DONE.encode()) else Claim.HELD

    async def done(self, delivery_id: str, keep: float) -> None:
        await self._redis.set(self._prefix + delivery_id, _DONE, px=_ms(keep))

    async def release(self, delivery_id: str, token: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._prefix + delivery_id, token)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@attrs.define
class _Queued:
    """A delivery for the workers; with a store, how its callback went (`outcome`)."""

    delivery: Delivery
    token: str | None = None
    outcome: str | None = None  # "done" | "failed" | "dropped", once known
    finished: anyio.Event | None = None


@attrs.frozen
class ReceiverResponse:
    """What `DeliveryReceiver.handle` answers: an HTTP status, a JSON body and headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = attrs.field(factory=dict)


def _check_secrets(secret: Secrets) -> tuple[str, ...]:
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets:
        raise ValidationError("`secret` must be a secret or a non-empty list of secrets")
    for index, value in enumerate(secrets):
        check_secret(value, "secret" if isinstance(secret, str) else f"secret[{index}]")
    return secrets


class DeliveryReceiver:
    """Verifies deliveries, drops duplicates, and hands each new one to `on_delivery`.

    The callback runs in worker tasks owned by `async with receiver.running()` (the
    Starlette app from `.app()` enters it in its lifespan). Requests are answered as
    soon as a delivery is queued: 200 (also for a duplicate, so the API stops
    retrying it), 401 for a bad or missing signature, 400 for a body that is not
    a delivery, 413 above `max_body_bytes`, and 503 with `Retry-After` while the
    queue is full or the receiver is not running, so the API tries again later.

    Args:
        secret: The webhook's secret, or several while rotating (see `secrets`).
        on_delivery: `async def on_delivery(delivery: Delivery) -> None`. Exceptions
            are logged; the delivery has already been acknowledged. A plain (sync)
            function is refused with `ValidationError`, as it would block the event
            loop: call blocking code from an async one through `anyio.to_thread`.
        tolerance: Largest clock distance of `webhook-timestamp`, in seconds.
        concurrency: Worker tasks calling `on_delivery` at once.
        max_pending: Deliveries queued for the workers before answering 503.
        remember: Most delivery IDs remembered for dropping duplicates (about 100
            bytes each: the default 100,000 is ~10 MB at most).
        remember_for: Seconds an ID is remembered (default one day, longer than the
            API's retry window).
        max_body_bytes: Largest body accepted (deliveries are a few KB).
        drain_timeout: On shutdown (a cancelled one too), seconds the workers get to
            hand queued deliveries over; what is left after it is logged as dropped.
        dedupe: A store shared by the receiver's replicas (`RedisDedupe`,
            `MemoryDedupe`): claim before the callback, done after it, answer once
            it returned (see the module docstring). None (default): this
            process's memory, answering once queued.
        lease: Seconds a claim holds while the callback runs: longer than the
            callback takes, short enough that a dead replica's deliveries are
            soon taken by another.

    Example:
        receiver = DeliveryReceiver(secret, on_delivery)
        app = receiver.app("/webhooks/nexus")   # serve with hypercorn or uvicorn
    """

    def __init__(
        self,
        secret: Secrets,
        on_delivery: OnDelivery,
        *,
        tolerance: float = signing.DEFAULT_TOLERANCE,
        concurrency: int = 8,
        max_pending: int = 1000,
        remember: int = 100_000,
        remember_for: float = 86_400.0,
        max_body_bytes: int = 1 << 20,
        drain_timeout: float = 10.0,
        dedupe: DedupeStore | None = None,
        lease: float = 30.0,
    ) -> None:
        self._secrets = _check_secrets(secret)
        if not _is_async_callable(on_delivery):
            raise ValidationError(
                "`on_delivery` must be an async function (`async def`), got"
                f" {on_delivery!r}; run blocking work in a thread from it, e.g."
                " `await anyio.to_thread.run_sync(store, delivery)`"
            )
        for name, value in (
            ("concurrency", concurrency),
            ("max_pending", max_pending),
            ("remember", remember),
            ("max_body_bytes", max_body_bytes),
        ):
            if type(value) is not int or value < 1:
                raise ValidationError(f"`{name}` must be an integer >= 1 (got {value!r})")
        for name, number in (
            ("tolerance", tolerance),
            ("remember_for", remember_for),
            ("drain_timeout", drain_timeout),
            ("lease", lease),
        ):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
                raise ValidationError(f"`{name}` must be a number > 0 (got {number!r})")
        self._on_delivery = on_delivery
        self.tolerance = float(tolerance)
        self.concurrency = concurrency
        self.max_pending = max_pending
        self.max_body_bytes = max_body_bytes
        self.drain_timeout = float(drain_timeout)
        self._recent = _RecentIds(remember, float(remember_for))
        self._store = dedupe
        self.lease = float(lease)
        self._send: MemoryObjectSendStream[_Queued] | None = None
        self._wakeups: list[Wakeups] = []

    def __repr__(self) -> str:
        state = "running" if self._send is not None else "stopped"
        return f"<DeliveryReceiver {state} secrets={len(self._secrets)}>"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The accepted secrets. Assign `[new, old]` during a rotation, then `[new]`."""
        return self._secrets

    @secrets.setter
    def secrets(self, value: Secrets) -> None:
        self._secrets = _check_secrets(value)

    def connect(self, client: AsyncClient) -> None:
        """Wake `client`'s waits on a job as soon as a verified delivery for it arrives.

        `wait_until_done`, `watch`, `wait_all` and `as_completed` (inside
        `async with client`) then refresh the job shortly after its latest delivery
        instead of at their next poll; polling stays the source of truth, so a wait
        finishes only on the API's word, and works the same without a receiver.
        While connected, the shared poller polls every `interval` instead of
        quickening on changes, so a wait costs no more requests than without.

        Example:
            receiver.connect(client)
            finals = await jobs.wait_all(ids)   # returns within moments of the last results
        """
        hub = client.wakeups
        if hub not in self._wakeups:
            self._wakeups.append(hub)
            hub.receivers += 1

    def _woke(self, delivery: Delivery) -> None:
        for hub in self._wakeups:
            hub.notify(delivery.job_id)

    def handle(self, body: bytes, headers: Mapping[str, str]) -> ReceiverResponse:
        """Verify, de-duplicate and queue one delivery; say what to answer.

        Framework-neutral: call it from any handler with the raw body and headers.
        It never waits: a full queue is answered 503 instead.
        """
        try:
            delivery = verify_delivery(self._secrets, body, headers, tolerance=self.tolerance)
        except WebhookSignatureError as exc:
            logger.warning("rejected a delivery: %s", exc)
            return ReceiverResponse(401, {"message": f"signature rejected: {exc}"})
        except DeliveryDecodeError as exc:
            logger.warning("rejected a signed delivery: %s", exc)
            return ReceiverResponse(400, {"message": str(exc)})
        ident = delivery.delivery_id
        self._woke(delivery)
        if ident in self._recent:
            logger.debug("dropped duplicate delivery %s", ident)
            return ReceiverResponse(200, {"deliveryId": ident, "duplicate": True})
        if self._send is None:
            logger.error(
                "delivery %s refused: the receiver is not running (enter `receiver.running()`"
                " or use `receiver.lifespan`)",
                ident,
            )
            return _busy("receiver not running")
        try:
            self._send.send_nowait(_Queued(delivery))
        except anyio.WouldBlock:
            logger.warning("delivery %s refused: %d deliveries queued", ident, self.max_pending)
            return _busy("receiver busy")
        # Remembered only once queued: a refused delivery must be taken when retried.
        self._recent.add(ident)
        return ReceiverResponse(200, {"deliveryId": ident, "duplicate": False})

    async def handle_async(self, body: bytes, headers: Mapping[str, str]) -> ReceiverResponse:
        """`handle`, and with a `dedupe` store the claim, the callback and the answer after it.

        Framework-neutral like `handle`; the endpoint of `.app()` and `.route()` calls it.
        """
        if self._store is None:
            return self.handle(body, headers)
        try:
            delivery = verify_delivery(self._secrets, body, headers, tolerance=self.tolerance)
        except (WebhookSignatureError, DeliveryDecodeError):
            return self.handle(body, headers)  # the same refusal, logged once there
        ident = delivery.delivery_id
        self._woke(delivery)
        if self._send is None:
            logger.error("delivery %s refused: the receiver is not running", ident)
            return _busy("receiver not running")
        token = _secrets.token_hex(16)
        claim = await self._store.claim(ident, token, self.lease)
        if claim is Claim.DONE:
            logger.debug("dropped duplicate delivery %s", ident)
            return ReceiverResponse(200, {"deliveryId": ident, "duplicate": True})
        if claim is Claim.HELD:
            return _busy("delivery being handled by another replica")
        queued = _Queued(delivery, token, finished=anyio.Event())
        try:
            self._send.send_nowait(queued)
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            await self._store.release(ident, token)
            return _busy("receiver busy")
        assert queued.finished is not None
        await queued.finished.wait()
        if queued.outcome == "done":
            return ReceiverResponse(200, {"deliveryId": ident, "duplicate": False})
        return ReceiverResponse(500, {"message": f"delivery {ident} not handled; send it again"})

    async def _settle(self, queued: _Queued, outcome: str) -> None:
        """Record how a claimed delivery's callback went, in the store and for its request."""
        queued.outcome = outcome
        try:
            if self._store is not None and queued.token is not None:
                ident = queued.delivery.delivery_id
                with anyio.move_on_after(5.0, shield=True):
                    if outcome == "done":
                        await self._store.done(ident, self.tolerance + DONE_MARGIN)
                    else:
                        await self._store.release(ident, queued.token)
        except Exception:
            # Unrecorded, the claim lapses after its lease and the retry is handled again.
            logger.exception(
                "could not record delivery %s as %s", queued.delivery.delivery_id, outcome
            )
        finally:
            if queued.finished is not None:
                queued.finished.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DeliveryReceiver]:
        """Run the workers that call `on_delivery`, for the duration of the block.

        On exit, also when cancelled from outside, deliveries already acknowledged get
        up to `drain_timeout` seconds to be handed to `on_delivery`; any still queued or
        interrupted after that are logged (ERROR, with their IDs) as dropped.
        """
        if self._send is not None:
            raise RuntimeError("this DeliveryReceiver is already running")
        send, receive = anyio.create_memory_object_stream[_Queued](self.max_pending)
        # The workers run under a shielded scope (in a task of their own, so the block
        # itself is not shielded): a cancellation of the block must not drop what was
        # already answered 200. Leaving the block bounds that scope by `drain_timeout`.
        drain = anyio.CancelScope(shield=True)
        # The block's own exception is kept out of the task group, which would wrap it
        # in an ExceptionGroup; it is raised as is once the workers are done.
        error: BaseException | None = None
        async with anyio.create_task_group() as tg:
            await tg.start(self._pool, receive, drain)
            self._send = send
            try:
                yield self
            except BaseException as exc:
                error = exc
            finally:
                self._send = None
                send.close()  # workers finish what is queued, then stop
                drain.deadline = anyio.current_time() + self.drain_timeout
        if error is not None:
            raise error

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """A Starlette/FastAPI `lifespan` running this receiver: `FastAPI(lifespan=r.lifespan)`."""
        async with self.running():
            yield

    async def _pool(
        self,
        receive: MemoryObjectReceiveStream[_Queued],
        drain: anyio.CancelScope,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        dropped: list[str] = []
        with receive:
            with drain:
                async with anyio.create_task_group() as tg:
                    for _ in range(self.concurrency):
                        tg.start_soon(self._work, receive.clone(), dropped)
                    task_status.started()
            # Only a missed drain deadline leaves anything here.
            while True:
                try:
                    left = receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
                dropped.append(left.delivery.delivery_id)
                with anyio.CancelScope(shield=True):
                    await self._settle(left, "dropped")
        if dropped:
            logger.error(
                "%d acknowledged deliveries dropped at shutdown, not handed to on_delivery"
                " within drain_timeout=%g s (the API will not resend them): %s",
                len(dropped),
                self.drain_timeout,
                ", ".join(dropped),
            )

    async def _work(self, receive: MemoryObjectReceiveStream[_Queued], dropped: list[str]) -> None:
        async with receive:
            async for queued in receive:
                delivery = queued.delivery
                try:
                    await self._on_delivery(delivery)
                except anyio.get_cancelled_exc_class():
                    dropped.append(delivery.delivery_id)
                    with anyio.CancelScope(shield=True):
                        await self._settle(queued, "dropped")
                    raise
                except Exception:
                    logger.exception("on_delivery failed for delivery %s", delivery.delivery_id)
                    await self._settle(queued, "failed")
                else:
                    await self._settle(queued, "done")

    async def endpoint(self, request: Request) -> Response:
        """The Starlette endpoint: `Route(path, receiver.endpoint, methods=["POST"])`."""
        from starlette.requests import ClientDisconnect
        from starlette.responses import JSONResponse

        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_body_bytes:
                    return JSONResponse(
                        {"message": f"body larger than {self.max_body_bytes} bytes"},
                        status_code=413,
                    )
        except ClientDisconnect:
            # Nothing was acknowledged, so the API sends the delivery again: not an error.
            logger.info("a sender disconnected after %d bytes of a delivery's body", len(body))
            return JSONResponse({"message": "the body ended early"}, status_code=400)
        answer = await self.handle_async(bytes(body), request.headers)
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    def route(self, path: str = "/") -> Route:
        """A Starlette `Route` (POST `path`) for your own app, whose lifespan must run
        `receiver.running()` (or pass `lifespan=receiver.lifespan`)."""
        from starlette.routing import Route

        return Route(path, self.endpoint, methods=["POST"])

    def app(self, path: str = "/") -> Starlette:
        """A Starlette app receiving deliveries on POST `path`, running the receiver in its
        lifespan. Serve it with an ASGI server (hypercorn, uvicorn)."""
        from starlette.applications import Starlette

        return Starlette(routes=[self.route(path)], lifespan=self.lifespan)


def _is_async_callable(function: object) -> bool:
    """An `async def` function, a `functools.partial` of one, or an object whose
    `__call__` is one. A plain function is refused: its result cannot be awaited."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        type(function).__call__
    )


def _busy(reason: str) -> ReceiverResponse:
    return ReceiverResponse(503, {"message": reason}, {"Retry-After": "1"})


def receiver_app(
    secret: Secrets, on_delivery: OnDelivery, *, path: str = "/", **options: Any
) -> Starlette:
    """A Starlette app that receives deliveries: `DeliveryReceiver(...).app(path)`.

    Args:
        secret: The webhook's secret, or several while rotating.
        on_delivery: `async def on_delivery(delivery: Delivery) -> None`.
        path: Where deliveries are POSTed.
        **options: Any other `DeliveryReceiver` argument.

    Example:
        app = receiver_app(os.environ["NEXUS_WEBHOOK_SECRET"], store_result)
    """
    return DeliveryReceiver(secret, on_delivery, **options).app(path)
