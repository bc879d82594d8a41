"""LocalNexus: a NexusCore served over HTTP on loopback, as one ``async with``."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

from starlette.applications import Starlette

from ._core import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_UPLOAD_BYTES, NexusCore
from ._serve import serve_asgi
from .app import build_app
from .predictor import Predictor

__all__ = ["LocalNexus"]


class LocalNexus(NexusCore):
    """A local Nexus batch server: the batch API on ``base_url``, jobs really running.

    Everything it starts (the HTTP server, the job runner, its HTTP client) lives in a task
    group owned by ``async with``; leaving the block cancels running jobs and closes every
    socket. Works under asyncio and trio.

    Args:
        host: interface to listen on (default loopback).
        port: TCP port; 0 (default) picks a free one.
        secret_key: key of the first project; random when None.
        project_id: id of the first project; ``proj_<32 hex>`` when None.
        predictor: the model every deployment runs; default :class:`ForegroundPredictor`.
        static_dir: a folder served (without auth) under ``{base_url}/static/``.
        latency: seconds added before every API answer (not static files or admin calls).
        job_concurrency: how many jobs move items at once; the others wait their turn.
        item_concurrency: how many items of one job are in flight at once.
        delivery_timeout: seconds for one webhook POST attempt.
        gather_timeout: seconds to fetch one item.
        max_item_bytes: largest item the gather stage accepts.
        max_body_bytes: largest JSON request body (413 above).
        max_upload_bytes: largest dataset file (413 at dataset creation above).

    Example::

        async with LocalNexus() as nexus:
            headers = {"Secret-Key": nexus.secret_key}
            url = f"{nexus.base_url}/projects/{nexus.project_id}/batch/jobs"
            async with httpx.AsyncClient(headers=headers) as client:
                print((await client.get(url)).json())
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secret_key: str | None = None,
        project_id: str | None = None,
        predictor: Predictor | None = None,
        static_dir: str | os.PathLike[str] | None = None,
        latency: float = 0.0,
        job_concurrency: int = 8,
        item_concurrency: int = 16,
        delivery_timeout: float = 10.0,
        gather_timeout: float = 10.0,
        max_item_bytes: int = 20 * 1024 * 1024,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        super().__init__(
            secret_key=secret_key,
            project_id=project_id,
            predictor=predictor,
            static_dir=static_dir,
            latency=latency,
            job_concurrency=job_concurrency,
            item_concurrency=item_concurrency,
            delivery_timeout=delivery_timeout,
            gather_timeout=gather_timeout,
            max_item_bytes=max_item_bytes,
            max_body_bytes=max_body_bytes,
            max_upload_bytes=max_upload_bytes,
        )
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535 (got {port})")
        self.host = host
        self.port = port
        self.app: Starlette = build_app(self, lifespan=False)
        """The ASGI app; usable with ``httpx.ASGITransport`` while the server runs."""
        self._base_url: str | None = None
        self._lifecycle: AbstractAsyncContextManager[None] | None = None
        self._entered = False

    @property
    def base_url(self) -> str:
        """``http://host:port``; the spec's paths are relative to it."""
        if self._base_url is None:
            raise RuntimeError("LocalNexus is not running: use `async with LocalNexus() as nexus`")
        return self._base_url

    def static_url(self, path: str) -> str:
        """The URL of ``static_dir/path`` on this server."""
        return f"{self.base_url}/static/{urllib.parse.quote(path.lstrip('/'))}"

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        # On the way out the runner stops first (jobs cancelled, its client closed), then
        # the HTTP server shuts down gracefully.
        async with serve_asgi(self.app, host=self.host, port=self.port) as url, self.running():
            self._base_url = url
            try:
                yield
            finally:
                self._base_url = None

    async def __aenter__(self) -> LocalNexus:
        if self._entered:
            raise RuntimeError("a LocalNexus can be entered only once; create a new one")
        self._entered = True
        self._lifecycle = self._run()
        await self._lifecycle.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._lifecycle is not None
        return await self._lifecycle.__aexit__(exc_type, exc, tb)
