"""Raw httpx clients for tests, all sharing one TLS context, and a raw HTTP/1.1 answerer.

Building a TLS context loads the CA bundle: 20-50 ms of CPU per client, for clients
that mostly talk plain HTTP on loopback. One context, built once, serves them all.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from anyio.abc import ByteStream

TLS = ssl.create_default_context()


def raw_client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with the shared TLS context that ignores proxy variables."""
    kwargs.setdefault("verify", TLS)
    kwargs.setdefault("trust_env", False)
    return httpx.AsyncClient(**kwargs)


async def answer_each_request(stream: ByteStream, answer: Callable[[bytes], bytes]) -> None:
    """Answer the body-less requests of one keep-alive connection: `answer(head)` for each.

    At most 100 requests; returns quietly once the client goes away (or, over TLS,
    refuses the server's certificate).
    """
    buffer = b""
    try:
        async with stream:
            for _ in range(100):  # requests on one connection, bounded
                while b"\r\n\r\n" not in buffer:
                    buffer += await stream.receive()
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                await stream.send(answer(head))
    except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError, OSError):
        pass
