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
"""

from __future__ import annotations

import collections
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from . import signing
from ._convert import DecodeFailure, structure
from ._webhooks import check_secret
from .errors import DeliveryDecodeError, ValidationError, WebhookSignatureError
from .models import Delivery

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

__all__ = [
    "DeliveryReceiver",
    "ReceiverResponse",
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
        self._send: MemoryObjectSendStream[Delivery] | None = None

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
            self._send.send_nowait(delivery)
        except anyio.WouldBlock:
            logger.warning("delivery %s refused: %d deliveries queued", ident, self.max_pending)
            return _busy("receiver busy")
        # Remembered only once queued: a refused delivery must be taken when retried.
        self._recent.add(ident)
        return ReceiverResponse(200, {"deliveryId": ident, "duplicate": False})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DeliveryReceiver]:
        """Run the workers that call `on_delivery`, for the duration of the block.

        On exit, also when cancelled from outside, deliveries already acknowledged get
        up to `drain_timeout` seconds to be handed to `on_delivery`; any still queued or
        interrupted after that are logged (ERROR, with their IDs) as dropped.
        """
        if self._send is not None:
            raise RuntimeError("this DeliveryReceiver is already running")
        send, receive = anyio.create_memory_object_stream[Delivery](self.max_pending)
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
        receive: MemoryObjectReceiveStream[Delivery],
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
                    dropped.append(receive.receive_nowait().delivery_id)
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
        if dropped:
            logger.error(
                "%d acknowledged deliveries dropped at shutdown, not handed to on_delivery"
                " within drain_timeout=%g s (the API will not resend them): %s",
                len(dropped),
                self.drain_timeout,
                ", ".join(dropped),
            )

    async def _work(self, receive: MemoryObjectReceiveStream[Delivery], dropped: list[str]) -> None:
        async with receive:
            async for delivery in receive:
                try:
                    await self._on_delivery(delivery)
                except anyio.get_cancelled_exc_class():
                    dropped.append(delivery.delivery_id)
                    raise
                except Exception:
                    logger.exception("on_delivery failed for delivery %s", delivery.delivery_id)

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
        answer = self.handle(bytes(body), request.headers)
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
