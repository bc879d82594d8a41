"""Raw httpx clients for tests, all sharing one TLS context.

Building a TLS context loads the CA bundle: 20-50 ms of CPU per client, for clients
that mostly talk plain HTTP on loopback. One context, built once, serves them all.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

TLS = ssl.create_default_context()


def raw_client(**kwargs: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with the shared TLS context that ignores proxy variables."""
    kwargs.setdefault("verify", TLS)
    kwargs.setdefault("trust_env", False)
    return httpx.AsyncClient(**kwargs)
