"""Bounded request bodies: a read deadline for the whole body, and drained rejections.

``BodyGuard`` sits just inside the fault layer and wraps every HTTP request:

- Reading the body has one deadline, counted from the request's start:
  ``body_timeout`` seconds plus one second per MiB of the declared ``Content-Length``
  (up to the largest body accepted), so a big upload at a healthy speed fits and a
  dribbled one does not. A read past it raises ``TimedOut``, which the app answers 408;
  a connection that trickles bytes can no longer hold a handler, or a dataset in
  ``Uploading``, for ever.
- A handler that answers before reading the whole body (a rejected upload, a 404) has
  the rest read and dropped before its answer goes out, up to ``DRAIN_LIMIT`` bytes and
  within the same deadline. Otherwise the server would close a connection with unread
  data, the kernel would reset it, and the client could lose the answer and retry the
  whole upload; past the limit the answer says ``Connection: close``.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import TimedOut

__all__ = ["DRAIN_LIMIT", "BodyGuard"]

DRAIN_LIMIT = 64 * 1024 * 1024
_SECONDS_PER_BYTE = 1.0 / (1024 * 1024)  # the slowest upload rate allowed: 1 MiB/s


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


class BodyGuard:
    """ASGI middleware bounding the time and the leftovers of request bodies.

    Args:
        app: the app to wrap.
        timeout: the ``body_timeout`` setting, in seconds.
        max_bytes: the largest body any route accepts; a larger declared length earns
            no more time (a huge ``Content-Length`` cannot buy a connection hours).
    """

    def __init__(self, app: ASGIApp, *, timeout: float, max_bytes: int) -> None:
        self.app = app
        self.timeout = timeout
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        base = self.timeout
        allowed = base + min(_declared_length(scope), self.max_bytes) * _SECONDS_PER_BYTE
        deadline = anyio.current_time() + allowed
        complete = False  # the last body message (or a disconnect) has been received

        async def guarded_receive() -> Message:
            nonlocal complete
            if complete:  # only a disconnect can come now: no deadline for waiting on it
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise TimedOut(
                    f"the request body did not arrive within {allowed:g} s"
                    f" ({base:g} s plus 1 s per MiB declared)"
                )
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def drain() -> bool:
            """Read and drop the rest of the body; whether all of it was read."""
            seen = 0
            with anyio.move_on_after(deadline - anyio.current_time()):
                while not complete and seen <= DRAIN_LIMIT:
                    seen += len((await guarded_receive()).get("body", b""))
            return complete

        async def draining_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                try:
                    drained = await drain()
                except TimedOut:
                    drained = False
                if not drained:
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, guarded_receive, draining_send)
