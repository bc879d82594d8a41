"""The one place that sends requests.

Every API call goes through `HTTPCore.request`: it adds the auth and identity
headers, applies timeouts, retries what is safe to retry under the one
`RetryPolicy`, maps failures to `nexus_async.errors`, and decodes the body into
a model through the one converter. httpx exceptions never leave this module.

What is retried:

* `Retry.IDEMPOTENT` (GET, DELETE, the cancel PATCH): connection errors,
  timeouts, 429 (sleeping for `Retry-After` when given), 500, 502, 503, 504.
* `Retry.UNSENT` (creates): only failures that prove the request never reached
  the server (could not connect, or no pooled connection was free). A create that
  got a 5xx or lost its response may have been carried out, and repeating it
  could start a second job, so it is raised instead.

Load control is client-wide: at most `max_in_flight` requests are on the wire at
once (the rest queue here, first come first served, instead of timing out in the
connection pool), and a 429 pauses every request of the client until its
`Retry-After` (or backoff) has passed, so one rate limit slows the whole client
rather than letting its other coroutines keep hitting it. A `Retry-After` longer
than `RetryPolicy.max_retry_after` pauses nothing: it is raised at once as
`RateLimitedError` (with `retry_after`) for the caller to decide.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import sys
import time
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import httpx

from . import errors
from ._backoff import RetryPolicy
from ._convert import DecodeFailure, structure
from ._transport import SpreadTransport
from ._version import __version__

__all__ = ["HTTPCore", "Retry"]

T = TypeVar("T")

logger = logging.getLogger("nexus_async")

USER_AGENT = (
    f"nexus-async/{__version__} httpx/{httpx.__version__} "
    f"python/{'.'.join(map(str, sys.version_info[:3]))}"
)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers after which the request may still have been carried out (a 503 or 429 says
# it was not; a gateway's 502/504 cannot know).
_MAYBE_DONE_STATUSES = frozenset({500, 502, 504})


class Retry(enum.Enum):
    """Which failures of a request may be retried."""

    IDEMPOTENT = "idempotent"
    UNSENT = "unsent"


class HTTPCore:
    """Sends API requests for one client: auth, retries, error mapping, decoding."""

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
        self.retry = retry
        self.owns_client = http_client is None
        self.closed = False
        self._in_flight = anyio.Semaphore(max_in_flight)
        self._paused_until = 0.0  # anyio clock; set by a 429 for the whole client
        self.requests_sent = 0
        # The API's clock, from the last `Date` header: (epoch seconds, anyio time seen).
        self._server_date: tuple[float, float] | None = None
        # One connection per pool (see `_transport`): httpcore's pool bookkeeping
        # grows with its connection count and dominated fan-out CPU time.
        self.client = http_client or httpx.AsyncClient(
            timeout=timeout, transport=SpreadTransport(max_connections)
        )
        self._headers = {
            "Secret-Key": secret_key,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }

    def __repr__(self) -> str:
        return f"<HTTPCore base_url={self.base_url!r}>"

    def server_time_ms(self) -> int | None:
        """The API's clock now (epoch ms), from the last response's `Date`; None if unknown.

        `Date` has whole seconds, cut down, so this is never ahead of the API's clock
        (by more than the drift since that response).
        """
        if self._server_date is None:
            return None
        date, seen = self._server_date
        return int((date + anyio.current_time() - seen) * 1000)

    async def aclose(self) -> None:
        self.closed = True
        if self.owns_client:
            await self.client.aclose()

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
        response, attempt = await self._send(
            method,
            url,
            url,
            headers=headers,
            params=params,
            content=lambda: content,
            retry=retry,
            redact=secrets,
        )
        return _decode(response, into, method, url, attempt, secrets)

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
        URL's query (its signature) is left out of logs and errors. `content` is called
        once per attempt for a fresh body stream; `headers` should carry its
        Content-Length. A PUT (the same bytes to the same URL) is retried like an
        idempotent request; any other method only when it provably was not sent.

        Raises:
            nexus_async.errors.TransportError: no response after the allowed attempts.
            nexus_async.errors.APIStatusError: a non-2xx answer (the subclass for its status).
        """
        retry = Retry.IDEMPOTENT if method.upper() == "PUT" else Retry.UNSENT
        await self._send(
            method,
            url,
            url.split("?", 1)[0],
            headers={"User-Agent": USER_AGENT, **headers},
            params=None,
            content=content,
            retry=retry,
            api=False,
            redact=(self._secret_key,),
        )

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
        api: bool = True,
        redact: tuple[str, ...] = (),
    ) -> tuple[httpx.Response, int]:
        """The retry loop: the first 2xx response and the attempt it came on, or raise.

        `shown_url` is what logs and errors show; `api` is False for requests to
        hosts other than the API's, whose 429s must not pause the whole client.
        """
        if self.closed:
            raise errors.ClientClosedError("this AsyncClient is closed; create a new one")
        policy = self.retry
        started = anyio.current_time()
        attempt = 0
        took_effect = False  # an earlier attempt may have been carried out
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                async with self._in_flight:
                    pause = self._paused_until - anyio.current_time()
                    if pause > 0:
                        await anyio.sleep(pause)
                    t0 = time.perf_counter()
                    self.requests_sent += 1
                    body = content()
                    request = self.client.build_request(
                        method,
                        url,
                        params=params,
                        content=body,
                        headers=headers,
                        timeout=self._timeout,
                    )
                    if isinstance(body, httpx.AsyncByteStream):
                        # Sent as is, not through httpx's wrapper of iterables: an
                        # async generator, left suspended (and warned about on trio)
                        # when the upload is cancelled.
                        request.stream = body
                    response = await self.client.send(request)
            except httpx.HTTPError as exc:
                error: errors.TransportError | errors.APIStatusError = _transport_error(
                    exc, method, shown_url, attempt
                )
                retryable = retry is Retry.IDEMPOTENT or isinstance(exc, _UNSENT_ERRORS)
                this_took_effect = not isinstance(exc, _UNSENT_ERRORS)
                logger.debug("%s %s failed: %s", method, shown_url, type(exc).__name__)
            else:
                if api:
                    self._note_date(response)
                logger.debug(
                    "%s %s -> %d in %.1f ms",
                    method,
                    shown_url,
                    response.status_code,
                    (time.perf_counter() - t0) * 1000,
                )
                if response.is_success:
                    return response, attempt
                error = _status_error(response, method, shown_url, attempt, redact)
                retryable = retry is Retry.IDEMPOTENT and response.status_code in _RETRY_STATUSES
                this_took_effect = response.status_code in _MAYBE_DONE_STATUSES
                if response.status_code == 429:
                    retry_after = _retry_after(response)
                    pause = (
                        policy.backoff.delay(attempt - 1) if retry_after is None else retry_after
                    )
                    # A hint longer than we are willing to wait is the caller's to act
                    # on (the error carries it), so it does not stall every other call.
                    if api and pause <= policy.max_retry_after:
                        self._paused_until = max(self._paused_until, anyio.current_time() + pause)
            error.earlier_attempt_may_have_taken_effect = took_effect
            took_effect = took_effect or this_took_effect
            if not retryable or attempt >= policy.attempts:
                raise error
            delay = policy.backoff.delay(attempt - 1) if retry_after is None else retry_after
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise error
            if anyio.current_time() - started + delay > policy.total_time:
                raise error
            logger.info(
                "retrying %s %s in %.2f s (attempt %d of %d): %s",
                method,
                shown_url,
                delay,
                attempt + 1,
                policy.attempts,
                error,
            )
            await anyio.sleep(delay)

    def _note_date(self, response: httpx.Response) -> None:
        value = response.headers.get("Date")
        if value is None:
            return
        try:
            date = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return
        self._server_date = (date, anyio.current_time())


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
    return error


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
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
        payload = json.loads(response.content)
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
        response=response,
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
    response: httpx.Response,
    into: type[T],
    method: str,
    url: str,
    attempt: int,
    redact: tuple[str, ...],
) -> T:
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        raise errors.ResponseDecodeError(
            f"response body is not JSON: {_snippet(response, redact)!r}",
            method=method,
            url=url,
            status=response.status_code,
            response=response,
            attempts=attempt,
        ) from exc
    try:
        return structure(data, into)
    except DecodeFailure as exc:
        raise errors.ResponseDecodeError(
            _redacted(str(exc), redact),
            method=method,
            url=url,
            status=response.status_code,
            response=response,
            attempts=attempt,
        ) from exc
