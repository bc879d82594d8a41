"""A scripted `httpx.MockTransport` for tests of the HTTP layer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from nexus_async import AsyncClient

from ..support import FAST_RETRY

__all__ = ["FAST_RETRY", "KEY", "PROJECT", "Script", "body", "error", "ok"]

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
PROJECT = "proj_0123456789abcdef"
KEY = "sk-test-secret-0123456789"


class Script:
    """Answers requests in order from `replies`, recording each request."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def client(self, **kwargs: Any) -> AsyncClient:
        kwargs.setdefault("retry", FAST_RETRY)
        return AsyncClient(
            KEY,
            base_url="http://nexus.test",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self)),
            **kwargs,
        )


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


def error(status: int, message: str = "boom", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message, "code": "E"}, headers=headers)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)
