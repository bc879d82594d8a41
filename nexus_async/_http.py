"""The one place that sends requests.

Every API call goes through `HTTPCore.request`: it adds the auth and identity
headers, applies timeouts, retries what is safe to retry under the one
`RetryPolicy`, maps failures to `nexus_async.errors`, and decodes the body into
a model through the one converter. httpx exceptions never leave this module.

`_attempts` is a short loop: `_attempt` makes one attempt and returns the 2xx response
or the error with its `Outcome`, and `_backoff.decide` (a pure function, tested as a
table) says whether to retry, after how long, and how long a 429 pauses the client.

What is retried:

* `Retry.IDEMPOTENT` (GET, DELETE, the cancel PATCH): connection errors,
  timeouts, 429 (sleeping for `Retry-After` when given), 500, 502, 503, 504.
* `Retry.UNSENT` (creates): only failures that prove the request never reached
  the server (could not connect, or no pooled connection was free). A create that
  got a 5xx or lost its response may have been carried out, and repeating it
  could start a second job, so it is raised instead.

Every exchange has a deadline from connecting to the last byte (the longest part of
the client's timeout), since httpx's timeouts bound each read and write and an
answer dripping a byte at a time never trips them; with `RetryPolicy.total_time`
no call outlives its retry budget by more than one exchange.

Answers are parsed in one place (`_load_json`), where JSON nested too deep is a
`ResponseDecodeError` for the call it answers, and a body is read no further than
`MAX_BODY_BYTES`. `aclose()` cancels the calls under way, which then
raise `ClientClosedError`. The key never appears in what errors carry (messages,
`response.request`, the chained httpx exception), nor an upload URL's query in
logs, httpx's own included.

API calls of the SDK's own client go straight to its transport (`_exchange_direct`),
with the headers and request target the client would have built, made from parts
prepared once, and read their answer from httpcore's stream: httpx's request and
response objects and its client layers (auth, redirects, event hooks, cookies) cost
more CPU per call than the SDK's own work, and our client leaves those layers empty.
An `_Answer` makes the `httpx.Response` (and its request) only when one is handed out:
in an error, or to `RawResponses`. Uploads and a caller's `http_client` go through the
client as before.

`with_options` views (`AsyncClient.with_options`) are HTTPCores of their own timeout
and retry policy over one `_Shared` state: the pool, the limits, the counts, the
event loop the client is bound to (`bind_loop`: a client used on a second loop raises
`EventLoopError`). Every call is traced when OpenTelemetry is installed (`_otel`);
`RawResponses` hands a call's response back next to its result.

Load control is client-wide: at most `max_in_flight` requests are on the wire at
once (the rest queue here, first come first served, instead of timing out in the
connection pool), and a 429 pauses every request of the client until its
`Retry-After` (or backoff) has passed, so one rate limit slows the whole client
rather than letting its other coroutines keep hitting it. A `Retry-After` longer
than `RetryPolicy.max_retry_after` pauses nothing: it is raised at once as
`RateLimitedError` (with `retry_after`) for the caller to decide.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import enum
import inspect
import json
import logging
import math
import random
import re
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs
import httpx

from . import _otel, errors
from ._backoff import Outcome, RetryEvent, RetryPolicy, decide
from ._convert import structure
from ._transport import SpreadTransport, TransportStats
from ._version import __version__

if TYPE_CHECKING:
    import httpcore

__all__ = ["TRACE", "HTTPCore", "HTTPStats", "RawResponses", "Retry"]

# An httpcore trace callback for the requests sent from the current context: the
# log pager uses it to learn when its next request has been written.
TRACE: ContextVar[Callable[[str, dict[str, Any]], Awaitable[None]] | None] = ContextVar(
    "nexus_async_trace", default=None
)

T = TypeVar("T")

logger = logging.getLogger("nexus_async")
# httpx's own request log line, which API calls sent straight to the transport write too.
_httpx_logger = logging.getLogger("httpx")

USER_AGENT = (
    f"nexus-async/{__version__} httpx/{httpx.__version__} "
    f"python/{'.'.join(map(str, sys.version_info[:3]))}"
)
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# An upload's exchange deadline grows with its size at this slowest expected rate
# (bytes per second), so a large file on a slow uplink is not cut off.
UPLOAD_FLOOR_RATE = 128 * 1024
# The largest answer read and decoded, in bytes as they arrive (a full page of the
# API's largest objects is a few MB).
MAX_BODY_BYTES = 64 << 20
_KEY_HEADER = "Secret-Key"
_REDACTED = "[redacted]"
# Set by `RawResponses` around one call: the responses of its requests are kept here.
_CAPTURED: ContextVar[list[httpx.Response] | None] = ContextVar(
    "nexus_async_captured", default=None
)
# Set while an upload is sent, so the filter below knows whose URLs to shorten.
_UPLOADING: ContextVar[bool] = ContextVar("nexus_async_uploading", default=False)


class _UploadQueryFilter(logging.Filter):
    """Drops the query (its signature) from URLs in httpx's log lines about our uploads.

    httpx logs every request at INFO with its full URL, and a pre-signed upload
    URL's query is a credential for the bucket. The filter touches only records
    emitted while an upload of this SDK is being sent (a context variable says
    so), so other users of httpx in the process keep their log lines as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _UPLOADING.get() and isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(value: object) -> object:
    if isinstance(value, httpx.URL) and value.query:
        return value.copy_with(query=None)
    return value


logging.getLogger("httpx").addFilter(_UploadQueryFilter())
# A path that httpx would send as it is (nothing to percent-encode): API paths are.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.~:/-]*")
# Answers after which the request may still have been carried out (a 503 or 429 says
# it was not; a gateway's 502/504 cannot know).
_MAYBE_DONE_STATUSES = frozenset({500, 502, 504})


class Retry(enum.Enum):
    """Which failures of a request may be retried."""

    IDEMPOTENT = "idempotent"
    UNSENT = "unsent"


@attrs.frozen
class HTTPStats:
    """A snapshot of one client's HTTP traffic, as counted by the SDK.

    Args:
        requests_sent: Attempts sent since the client was made (each retry counts).
        waiting: Calls waiting for a free slot under the client's in-flight limit.
        in_flight: Requests on the wire: sent, and their answer not fully read yet.
        transport: The SDK's own transport's counts; None when an `http_client`
            was passed in (its transport is the caller's).
    """

    requests_sent: int
    waiting: int
    in_flight: int
    transport: TransportStats | None


class RawResponses:
    """A resource's calls, each returning `(result, response)`: `jobs.with_raw_response.get(id)`.

    `response` is the `httpx.Response` of the call's last request (read, its
    request's key blanked): its status, headers (`X-Request-Id`, rate limits) and
    body. Only this wrapper asks for responses (a context variable set around the
    call), so calls made without it keep nothing.
    """

    __slots__ = ("_resource",)

    def __init__(self, resource: object) -> None:
        self._resource = resource

    def __repr__(self) -> str:
        return f"<RawResponses of {self._resource!r}>"

    def __getattr__(self, name: str) -> Callable[..., Awaitable[tuple[Any, httpx.Response]]]:
        method = getattr(self._resource, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            raise AttributeError(f"{name!r} is not a call with one response")

        async def call(*args: Any, **kwargs: Any) -> tuple[Any, httpx.Response]:
            captured: list[httpx.Response] = []
            token = _CAPTURED.set(captured)
            try:
                result = await method(*args, **kwargs)
            finally:
                _CAPTURED.reset(token)
            return result, captured[-1]

        return call


@attrs.frozen
class _Failed:
    """An attempt that did not bring a 2xx: the error to raise and what retrying needs."""

    error: errors.APIError
    outcome: Outcome


class _Shared:
    """What every view of one client shares: the pool, the load limits, the counts, the loop."""

    def __init__(
        self,
        http_client: httpx.AsyncClient | None,
        timeout: httpx.Timeout,
        max_connections: int,
        max_in_flight: int,
    ) -> None:
        self.owns_client = http_client is None
        self.closed = False
        self.in_flight = anyio.Semaphore(max_in_flight)
        self.paused_until = 0.0  # anyio clock; set by a 429 for the whole client
        self.sent = 0
        self.waiting = 0
        self.on_wire = 0
        # The API's clock, from the last `Date` header: (epoch seconds, anyio time seen).
        self.server_date: tuple[float, float] | None = None
        self.date_header: str | None = None  # the `Date` that `server_date` came from
        self.calls: set[anyio.CancelScope] = set()  # of the calls under way, for aclose()
        self.loop: object = None  # the event loop the client first ran on
        # One connection per pool (see `_transport`): httpcore's pool bookkeeping
        # grows with its connection count and dominated fan-out CPU time.
        self.transport = SpreadTransport(max_connections) if http_client is None else None
        self.client = http_client or httpx.AsyncClient(timeout=timeout, transport=self.transport)
        # API calls skip the layers of our own client, which has none set up (auth,
        # event hooks, mounts: httpx ignores the environment's proxies for a client
        # given its transport; a proxy is set on an `http_client` passed in).
        self.direct = self.transport


class HTTPCore:
    """Sends API requests for one client: auth, retries, error mapping, decoding.

    `with_options` makes a view with its own timeout and retry policy over the same
    `_Shared` state; a view costs one small object and registers nowhere.
    """

    __slots__ = (
        "_base_path",
        "_deadline",
        "_extensions",
        "_headers",
        "_origin",
        "_secret_key",
        "_shared",
        "_timeout",
        "_wire_headers",
        "base_url",
        "retry",
    )

    def __init__(
        self,
        *,
        secret_key: str,
        base_url: str,
        timeout: httpx.Timeout,
        retry: RetryPolicy,
        http_client: httpx.AsyncClient | None,
        max_connections: int,
        max_in_flight: int,
    ) -> None:
        self._secret_key = secret_key
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._extensions = {"timeout": timeout.as_dict()}
        self._deadline = _exchange_deadline(timeout)
        self.retry = retry
        self._shared = _Shared(http_client, timeout, max_connections, max_in_flight)
        self._headers = {
            _KEY_HEADER: secret_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        base = httpx.URL(self.base_url)
        self._origin = (base.raw_scheme, base.raw_host, base.port, base.netloc)
        self._base_path = b"" if base.raw_path == b"/" else base.raw_path
        # The headers the client's `build_request` would send with API calls, built
        # once rather than merged for every request (`_exchange_direct`).
        self._wire_headers = self._wire(self._headers)

    def __repr__(self) -> str:
        return f"<HTTPCore base_url={self.base_url!r}>"

    def with_options(self, *, timeout: httpx.Timeout | None, retry: RetryPolicy | None) -> HTTPCore:
        """A view sending through the same pool and limits with another timeout or retry policy."""
        view = object.__new__(HTTPCore)
        view._secret_key = self._secret_key
        view.base_url = self.base_url
        view._headers = self._headers
        view._wire_headers = self._wire_headers
        view._origin = self._origin
        view._base_path = self._base_path
        view._shared = self._shared
        view._timeout = self._timeout if timeout is None else timeout
        view._extensions = self._extensions if timeout is None else {"timeout": timeout.as_dict()}
        view._deadline = self._deadline if timeout is None else _exchange_deadline(timeout)
        view.retry = self.retry if retry is None else retry
        return view

    def _wire(self, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        """`Host`, the client's default headers and `headers` over them, as the client sends."""
        merged = httpx.Headers(self._shared.client.headers)
        merged.update(headers)
        return [(b"Host", self._origin[3]), *merged.raw]

    @property
    def client(self) -> httpx.AsyncClient:
        """The httpx client requests go through (shared by every view)."""
        return self._shared.client

    @property
    def owns_client(self) -> bool:
        """Whether the httpx client was made here (and so is opened and closed here)."""
        return self._shared.owns_client

    @property
    def closed(self) -> bool:
        return self._shared.closed

    def bind_loop(self) -> None:
        """Tie the client to the running event loop on first use; raise on any other loop.

        httpx's pooled connections belong to the loop that opened them: used from
        another loop they fail in ways that name neither the client nor the fix,
        and cleaning them up there would schedule work on a loop we don't own.

        Raises:
            nexus_async.errors.EventLoopError: the running loop is not the client's.
        """
        shared = self._shared
        loop = _running_loop()
        if shared.loop is None:
            shared.loop = loop
        elif loop is not shared.loop:
            raise errors.EventLoopError(
                "this AsyncClient was first used on another event loop (or thread); a "
                "client belongs to one loop: create one AsyncClient per event loop, "
                "inside the code that runs on it (for example inside the function "
                "given to anyio.run or asyncio.run)"
            )

    def check_loop(self) -> None:
        """`bind_loop`'s check without binding: for cleanup, which must not run elsewhere."""
        if self._shared.loop is not None:
            self.bind_loop()

    def stats(self) -> HTTPStats:
        """Requests sent, waiting and in flight, and the transport's own counts."""
        shared = self._shared
        return HTTPStats(
            requests_sent=shared.sent,
            waiting=shared.waiting,
            in_flight=shared.on_wire,
            transport=None if shared.transport is None else shared.transport.stats(),
        )

    def server_time_ms(self) -> int | None:
        """The API's clock now (epoch ms), from the last response's `Date`; None if unknown.

        `Date` has whole seconds, cut down, so this is never ahead of the API's clock
        (by more than the drift since that response).
        """
        if self._shared.server_date is None:
            return None
        date, seen = self._shared.server_date
        return int((date + anyio.current_time() - seen) * 1000)

    async def aclose(self) -> None:
        """Close; calls under way (in flight, queued, between retries) raise `ClientClosedError`."""
        self.check_loop()
        shared = self._shared
        shared.closed = True
        for scope in list(shared.calls):
            scope.cancel()
        if shared.owns_client:
            await shared.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        into: type[T],
        retry: Retry,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        redact: tuple[str, ...] = (),
    ) -> T:
        """Send `method path`, retrying as `retry` allows, and decode the 2xx body into `into`.

        Error messages quote the server's answer, which may echo what was sent: the
        secret key and the `redact` strings (secrets in `body`) are replaced there.

        Raises:
            nexus_async.errors.TransportError: no response after the allowed attempts.
            nexus_async.errors.APIStatusError: a non-2xx answer (the subclass for its status).
            nexus_async.errors.ResponseDecodeError: a 2xx body that does not fit `into`.
        """
        url = self.base_url + path
        headers = self._headers
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers = {**headers, "Content-Type": "application/json"}
        secrets = (self._secret_key, *redact)
        answer, attempt = await self._send(
            method,
            url,
            url,
            headers=headers,
            params=params,
            content=lambda: content,
            retry=retry,
            deadline=self._deadline,
            redact=secrets,
            path=path,
        )
        captured = _CAPTURED.get()
        if captured is not None:
            captured.append(_carried(answer.response()))
        return _decode(answer, into, method, url, attempt, secrets)

    async def upload(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: Callable[[], AsyncIterable[bytes]],
    ) -> None:
        """Send a raw body to a pre-signed upload URL (a dataset's `uploadUrl`).

        The URL may point at another host (a storage bucket), so the API's `Secret-Key`
        is not sent, a 429 there does not pause the client's API requests, and the
        URL's query (its signature) is left out of logs and errors, httpx's own
        request log line included (see `_UploadQueryFilter`). `content` is called
        once per attempt for a fresh body stream; `headers` should carry its
        Content-Length, which also sets the exchange's deadline: the client's
        timeout plus the time the body takes at `UPLOAD_FLOOR_RATE`. A PUT (the
        same bytes to the same URL) is retried like an idempotent request; any other
        method only when it provably was not sent.

        Raises:
            nexus_async.errors.TransportError: no response after the allowed attempts.
            nexus_async.errors.APIStatusError: a non-2xx answer (the subclass for its status).
        """
        retry = Retry.IDEMPOTENT if method.upper() == "PUT" else Retry.UNSENT
        size = next((v for k, v in headers.items() if k.lower() == "content-length"), "")
        deadline = self._deadline
        if deadline is not None:  # unknown size: httpx's per-operation timeouts only
            deadline = deadline + int(size) / UPLOAD_FLOOR_RATE if size.isdigit() else None
        uploading = _UPLOADING.set(True)  # for `_UploadQueryFilter`
        try:
            await self._send(
                method,
                url,
                url.split("?", 1)[0],
                headers={"User-Agent": USER_AGENT, **headers},
                params=None,
                content=content,
                retry=retry,
                deadline=deadline,
                api=False,
                redact=(self._secret_key,),
            )
        finally:
            _UPLOADING.reset(uploading)

    async def _send(
        self,
        method: str,
        url: str,
        shown_url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        content: Callable[[], bytes | AsyncIterable[bytes] | None],
        retry: Retry,
        deadline: float | None,
        api: bool = True,
        redact: tuple[str, ...] = (),
        path: str | None = None,
    ) -> tuple[_Answer, int]:
        """One call: the first 2xx answer and the attempt it came on, or raise.

        `shown_url` is what logs and errors show; `deadline` bounds each exchange
        from connecting to the last byte (None: only httpx's per-operation timeouts);
        `api` is False for requests to hosts other than the API's, whose 429s must
        not pause the whole client; `path` is the API path (its template names the
        call's span).
        The attempts run in a cancel scope that `aclose()` cancels, so a closed
        client ends its calls at once, typed.
        """
        if self._shared.closed:
            raise errors.ClientClosedError("this AsyncClient is closed; create a new one")
        self.bind_loop()
        scope = anyio.CancelScope()
        self._shared.calls.add(scope)
        telemetry = _otel.get()
        spanned = (
            contextlib.nullcontext(None)
            if telemetry is None
            else telemetry.request_span(
                method, shown_url, None if path is None else _otel.route_template(path)
            )
        )
        try:
            with scope, spanned as span:
                return await self._attempts(
                    method,
                    url,
                    shown_url,
                    headers=headers,
                    params=params,
                    content=content,
                    retry=retry,
                    deadline=deadline,
                    api=api,
                    redact=redact,
                    span=span,
                )
        except errors.ClientClosedError:
            raise
        except Exception as exc:
            if not self._shared.closed:
                raise
            # Whatever the closing pool made of the exchange, the cause is the close.
            raise _closed_error() from exc
        finally:
            self._shared.calls.discard(scope)
        raise _closed_error()  # only aclose() cancels the scope

    async def _attempts(
        self,
        method: str,
        url: str,
        shown_url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        content: Callable[[], bytes | AsyncIterable[bytes] | None],
        retry: Retry,
        deadline: float | None,
        api: bool,
        redact: tuple[str, ...],
        span: _otel.RequestSpan | None,
    ) -> tuple[_Answer, int]:
        """Attempts until one brings a 2xx or `decide` says stop (noted on `span`)."""
        started = anyio.current_time()
        attempt = 0
        took_effect = False  # an earlier attempt may have been carried out
        while True:
            attempt += 1
            result = await self._attempt(
                method,
                url,
                shown_url,
                headers=headers,
                params=params,
                content=content(),
                attempt=attempt,
                api=api,
                deadline=deadline,
                redact=redact,
            )
            if isinstance(result, _Answer):
                if span is not None:
                    span.answered(result.status, attempt)
                return result, attempt
            decision = decide(
                self.retry,
                attempt=attempt,
                outcome=result.outcome,
                idempotent=retry is Retry.IDEMPOTENT,
                elapsed=anyio.current_time() - started,
                pauses_client=api,
                draw=random.random(),
            )
            result.error.earlier_attempt_may_have_taken_effect = took_effect
            outcome = result.outcome
            took_effect = took_effect or (
                outcome.sent if outcome.status is None else outcome.status in _MAYBE_DONE_STATUSES
            )
            result.error.may_have_taken_effect = took_effect
            if decision.pause:
                self._shared.paused_until = max(
                    self._shared.paused_until, anyio.current_time() + decision.pause
                )
                if span is not None:
                    span.paused(decision.pause)
            if not decision.retry:
                raise result.error
            logger.info(
                "retrying %s %s in %.2f s (attempt %d of %d): %s",
                method,
                shown_url,
                decision.delay,
                attempt + 1,
                self.retry.attempts,
                result.error,
            )
            reason = _reason(result)
            if span is not None:
                span.retry(attempt, decision.delay, reason)
            if self.retry.on_retry is not None:
                event = RetryEvent(
                    attempt=attempt,
                    delay=decision.delay,
                    reason=reason,
                    error=result.error,
                    method=method,
                    url=shown_url,
                )
                called = self.retry.on_retry(event)
                if inspect.isawaitable(called):
                    await called
            await anyio.sleep(decision.delay)

    async def _exchange(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        content: bytes | AsyncIterable[bytes] | None,
        headers: Mapping[str, str],
        api: bool,
    ) -> _Answer:
        """Send and read the answer; `_TooLarge` for a body over `MAX_BODY_BYTES`.

        A body declared larger is not read at all; one that is not declared (or
        lies) is read no further than the limit. API calls go straight to the SDK's
        transport when they can (`_exchange_direct`); uploads go through the client.
        """
        shared = self._shared
        trace = TRACE.get()
        if api and shared.direct is not None and (content is None or isinstance(content, bytes)):
            return await self._exchange_direct(shared.direct, method, url, params, content, headers)
        request = shared.client.build_request(
            method,
            url,
            params=params,
            content=content,
            headers=headers,
            timeout=self._timeout,
            extensions=None if trace is None else {"trace": trace},
        )
        if isinstance(content, httpx.AsyncByteStream):
            # Sent as is, not through httpx's wrapper of iterables: an async generator
            # would be left suspended (and warned about on trio) when an upload is cancelled.
            request.stream = content
        response = await shared.client.send(request, stream=True)
        try:
            declared = response.headers.get("Content-Length", "")
            if not declared.isdigit():  # h11 holds a declared body to its length
                response.stream = _Capped(response.stream, response)
            elif int(declared) > MAX_BODY_BYTES:
                raise _TooLarge(response)
            await response.aread()
        finally:
            await response.aclose()
        return _Answer.of(response)

    async def _exchange_direct(
        self,
        transport: SpreadTransport,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> _Answer:
        """`_exchange` of an API call, straight to the SDK's transport.

        It sends what the client would have sent (its default headers, ours over
        them, `Host`, the timeouts), past the client's auth, redirect, event-hook and
        cookie layers, which our own client leaves empty, and reads the body itself:
        httpx's request and response objects, built and read for every call, cost
        more CPU than everything else the SDK does. They are built only for the
        answers that are handed out (`_Answer.response`).
        """
        started = time.perf_counter()
        wire = self._wire_headers if headers is self._headers else self._wire(headers)
        if content is not None:
            wire = [*wire, (b"Content-Length", str(len(content)).encode())]
        elif method in ("POST", "PUT", "PATCH"):  # as httpx frames an empty body
            wire = [*wire, (b"Content-Length", b"0")]
        extensions: dict[str, Any] = self._extensions
        trace = TRACE.get()
        if trace is not None:
            extensions = {**extensions, "trace": trace}
        scheme, host, port, _ = self._origin
        sent = _Sent(method, url, params, wire, content, extensions)
        try:
            answer = await transport.open(
                method, (scheme, host, port, self._target(url, params)), wire, content, extensions
            )
            stream = answer.stream
            assert isinstance(stream, httpx.AsyncByteStream)  # the transport's body stream
            try:
                declared = _header(answer.headers, b"content-length")
                if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                    raise _TooLarge(_Answer(answer, b"", sent, started).response())
                chunks = []
                size = 0
                async with contextlib.aclosing(stream.__aiter__()) as parts:  # type: ignore[type-var]
                    async for chunk in parts:
                        size += len(chunk)
                        if size > MAX_BODY_BYTES:
                            raise _TooLarge(_Answer(answer, b"", sent, started).response())
                        chunks.append(chunk)
            finally:
                await stream.aclose()
        except httpx.RequestError as exc:
            exc.request = sent.request()  # as the client attaches it
            raise
        read = _Answer(answer, b"".join(chunks), sent, started)
        if _httpx_logger.isEnabledFor(logging.INFO):  # httpx's own line, as the client logs it
            response = read.response()
            _httpx_logger.info(
                'HTTP Request: %s %s "%s %d %s"',
                method,
                response.request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return read

    def _target(self, url: str, params: Mapping[str, str] | None) -> bytes:
        """The request target (path and query) of `url`, as httpx would encode it.

        API paths are made of fixed segments and checked IDs, so they need no
        encoding (one regular expression says so) and are used as they are: httpx
        parses and re-encodes a URL character by character (about 25 µs).
        """
        path = url[len(self.base_url) :]
        if params is None and _PLAIN_PATH.fullmatch(path):
            return self._base_path + path.encode("ascii")
        return httpx.URL(url, params=params).raw_path

    async def _attempt(
        self,
        method: str,
        url: str,
        shown_url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        content: bytes | AsyncIterable[bytes] | None,
        attempt: int,
        api: bool,
        deadline: float | None,
        redact: tuple[str, ...],
    ) -> _Answer | _Failed:
        """One attempt, once the client's in-flight limit and any 429 pause allow it.

        httpx's timeouts bound each read and write, so an answer dripping a byte
        at a time never trips them: `deadline` bounds the whole exchange.
        """
        shared = self._shared
        try:
            # A free slot is taken at once: the exchange checkpoints soon enough, and a
            # waiter is handed a slot directly, so a free one means nobody is queued.
            shared.in_flight.acquire_nowait()
        except anyio.WouldBlock:
            shared.waiting += 1
            try:
                await shared.in_flight.acquire()
            finally:
                shared.waiting -= 1
        try:
            if shared.paused_until:
                pause = shared.paused_until - anyio.current_time()
                if pause > 0:
                    await anyio.sleep(pause)
            t0 = time.perf_counter()
            shared.sent += 1
            shared.on_wire += 1
            try:
                with anyio.move_on_after(math.inf if deadline is None else deadline) as scope:
                    answer = await self._exchange(method, url, params, content, headers, api)
            finally:
                shared.on_wire -= 1
            if scope.cancelled_caught:
                logger.debug("%s %s failed: over its %g s deadline", method, shown_url, deadline)
                error = errors.RequestTimeoutError(
                    f"request timed out (no complete answer within {deadline:g} s)",
                    method=method,
                    url=shown_url,
                    attempts=attempt,
                )
                return _Failed(error, Outcome(sent=True))
        except _TooLarge as exc:
            oversized = errors.ResponseDecodeError(
                f"response body is larger than {MAX_BODY_BYTES} bytes; not read",
                method=method,
                url=shown_url,
                status=exc.response.status_code,
                response=_carried(exc.response),
                attempts=attempt,
            )
            return _Failed(oversized, Outcome(status=exc.response.status_code))
        except httpx.HTTPError as exc:
            logger.debug("%s %s failed: %s", method, shown_url, type(exc).__name__)
            return _Failed(
                _transport_error(exc, method, shown_url, attempt),
                Outcome(sent=not isinstance(exc, _UNSENT_ERRORS)),
            )
        finally:
            shared.in_flight.release()
        if api:
            self._note_date(answer)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.1f ms",
                method,
                shown_url,
                answer.status,
                (time.perf_counter() - t0) * 1000,
            )
        if 200 <= answer.status < 300:
            return answer
        response = answer.response()
        return _Failed(
            _status_error(response, method, shown_url, attempt, redact),
            Outcome(status=answer.status, retry_after=_retry_after(response)),
        )

    def _note_date(self, answer: _Answer) -> None:
        value = answer.header(b"date")
        shared = self._shared
        # `Date` has whole seconds: answers within one second repeat it, and its first
        # sighting is the closest to the API's clock, so it is parsed only when new.
        if value is None or value == shared.date_header:
            return
        try:
            date = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return
        shared.date_header = value
        shared.server_date = (date, anyio.current_time())


def _redact_key(request: httpx.Request) -> None:
    """Blank the key in a sent request: httpx's header repr hides only `Authorization`."""
    if _KEY_HEADER in request.headers:
        request.headers[_KEY_HEADER] = _REDACTED


def _carried(response: httpx.Response) -> httpx.Response:
    """`response` as an error carries it: its request's key blanked."""
    _redact_key(response.request)
    return response


def _reason(failed: _Failed) -> str:
    """Why an attempt failed, short: "HTTP 503", or the error's class without an answer."""
    status = failed.outcome.status
    return f"HTTP {status}" if status is not None else type(failed.error).__name__


def _running_loop() -> object:
    """The running event loop: asyncio's loop object, or trio's token for its run.

    Each backend is looked up among the imported modules: the one running is imported,
    and importing asyncio here would slow `import nexus_async` down.
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        with contextlib.suppress(RuntimeError):  # not asyncio's loop running: trio's
            return asyncio.get_running_loop()
    return sys.modules["trio"].lowlevel.current_trio_token()


def _closed_error() -> errors.ClientClosedError:
    return errors.ClientClosedError("the AsyncClient was closed while this call was under way")


class _TooLarge(Exception):
    """An answer with a body over `MAX_BODY_BYTES`, not read (any further)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response)
        self.response = response


class _Capped(httpx.AsyncByteStream):
    """A body stream that stops at `MAX_BODY_BYTES`: a hostile server may never end one."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, response: httpx.Response
    ) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream = stream
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _TooLarge(self._response)
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


def _load_json(content: bytes) -> Any:
    """The answer's JSON; `ValueError` for anything else, including JSON nested too deep.

    The one place answers are parsed, so that a hostile body (nested 100,000 deep,
    or an integer of 5,000 digits) fails the call it answers with a typed error
    instead of a `RecursionError` escaping into the caller's task group.
    """
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _exchange_deadline(timeout: httpx.Timeout) -> float | None:
    """Seconds one whole exchange may take: the longest of the timeout's parts that are set."""
    parts = [seconds for seconds in timeout.as_dict().values() if seconds is not None]
    return max(parts) if parts else None


def _transport_error(
    exc: httpx.HTTPError, method: str, url: str, attempt: int
) -> errors.TransportError:
    if isinstance(exc, httpx.TimeoutException):
        cls: type[errors.TransportError] = errors.RequestTimeoutError
        text = f"request timed out ({type(exc).__name__})"
    elif isinstance(exc, httpx.TransportError):
        cls = errors.NexusConnectionError
        text = f"connection failed ({type(exc).__name__}: {exc})"
    else:
        cls = errors.TransportError
        text = f"request failed ({type(exc).__name__}: {exc})"
    error = cls(text, method=method, url=url, attempts=attempt)
    error.__cause__ = exc
    with contextlib.suppress(RuntimeError):  # raised when no request is attached
        _redact_key(exc.request)  # the cause carries the request too
    return error


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _snippet(response: httpx.Response, redact: tuple[str, ...]) -> str:
    """The start of the body for a message, secrets taken out before it is cut."""
    return _redacted(response.text[:1000], redact)[:200]


def _status_error(
    response: httpx.Response, method: str, url: str, attempt: int, redact: tuple[str, ...]
) -> errors.APIStatusError:
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase}".strip()
    code: str | None = None
    try:
        payload = _load_json(response.content)
    except ValueError:
        snippet = _snippet(response, redact).strip()
        if snippet:
            message = f"{message}: {snippet}"
    else:
        if isinstance(payload, dict):
            if isinstance(payload.get("message"), str):
                message = _redacted(payload["message"], redact)
            if isinstance(payload.get("code"), str):
                code = payload["code"]
    cls = errors.status_error_class(status)
    error = cls(
        message,
        method=method,
        url=url,
        status=status,
        code=code,
        response=_carried(response),
        attempts=attempt,
    )
    if isinstance(error, errors.RateLimitedError):
        error.retry_after = _retry_after(response)
    return error


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (either form of the header), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _decode(
    answer: _Answer,
    into: type[T],
    method: str,
    url: str,
    attempt: int,
    redact: tuple[str, ...],
) -> T:
    cause: ValueError
    try:
        return structure(_load_json(answer.body), into)
    except errors.StructureError as exc:
        message, cause = _redacted(str(exc), redact), exc
    except ValueError as exc:
        response = answer.response()
        message = f"response body is not JSON ({exc}): {_snippet(response, redact)!r}"
        cause = exc
    raise errors.ResponseDecodeError(
        message,
        method=method,
        url=url,
        status=answer.status,
        response=_carried(answer.response()),
        attempts=attempt,
    ) from cause


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header `name` (lower case) in raw headers, or None."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class _Sent:
    """What an API call sent straight to the transport: enough to make its `httpx.Request`."""

    __slots__ = ("content", "extensions", "headers", "method", "params", "url")

    def __init__(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: list[tuple[bytes, bytes]],
        content: bytes | None,
        extensions: dict[str, Any],
    ) -> None:
        self.method = method
        self.url = url
        self.params = params
        self.headers = headers
        self.content = content
        self.extensions = extensions

    def request(self) -> httpx.Request:
        """The request as the client would have built it (its content read)."""
        request = httpx.Request(
            self.method,
            self.url,
            params=self.params,
            headers=self.headers,
            stream=httpx.ByteStream(self.content or b""),
            extensions=self.extensions,
        )
        request.read()
        return request


class _Answer:
    """A read answer: status, raw headers and body; its `httpx.Response` made when asked for.

    A 2xx answer to an API call is decoded and dropped, so the response object (and
    its request's) is built only for the answers handed out: errors, and calls under
    `RawResponses`. Answers that came through the client (uploads, a caller's
    `http_client`) are wrapped as they are.
    """

    __slots__ = ("_elapsed", "_raw", "_response", "_sent", "extensions", "headers", "status")

    def __init__(
        self, answer: httpcore.Response, raw: bytes, sent: _Sent | None, started: float
    ) -> None:
        self.status = answer.status
        self.headers = answer.headers
        self.extensions = answer.extensions
        self._raw = raw
        self._sent = sent
        self._elapsed = time.perf_counter() - started
        self._response: httpx.Response | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> _Answer:
        """An answer the client made and read."""
        answer = cls.__new__(cls)
        answer.status = response.status_code
        answer.headers = response.headers.raw
        answer.extensions = response.extensions
        answer._raw = response.content
        answer._sent = None
        answer._elapsed = 0.0
        answer._response = response
        return answer

    def header(self, name: bytes) -> str | None:
        """A header's value by its lower-case name, or None."""
        return _header(self.headers, name)

    @property
    def body(self) -> bytes:
        """The body, its `Content-Encoding` (if any) decoded as httpx decodes it."""
        if self._response is None and self.header(b"content-encoding") in (None, "identity"):
            return self._raw
        return self.response().content

    def response(self) -> httpx.Response:
        """The `httpx.Response`, read, with its request: as the client would have made it."""
        response = self._response
        if response is None:
            assert self._sent is not None
            response = httpx.Response(
                self.status,
                headers=self.headers,
                stream=httpx.ByteStream(self._raw),
                extensions=self.extensions,
                request=self._sent.request(),
            )
            response.read()  # decodes a `Content-Encoding`
            response.elapsed = datetime.timedelta(seconds=self._elapsed)
            self._response = response
        return response
