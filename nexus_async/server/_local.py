"""LocalNexus: a NexusCore served over HTTP on loopback, as one ``async with``."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

from starlette.applications import Starlette

from ._app import build_app
from ._clock import use_clock
from ._core import NexusCore
from ._serve import serve_asgi
from ._settings import ServerSettings

__all__ = ["LocalNexus"]


class LocalNexus(NexusCore):
    """A local Nexus batch server: the batch API on ``base_url``, jobs really running.

    Everything it starts (the HTTP server, the job runner, its HTTP client) lives in a task
    group owned by ``async with``; leaving the block cancels running jobs and closes every
    socket. Works under asyncio and trio.

    Args:
        settings: the server's options, ``host`` and ``port`` included (default: all
            defaults: a free loopback port).
        **overrides: fields of ``ServerSettings`` to change, e.g.
            ``LocalNexus(static_dir="images/", latency=0.05)``.

    Raises:
        TypeError: an override that is not a ``ServerSettings`` field.
        ValueError: a bad option value, naming the option.

    Example:
        ```python
        async with LocalNexus() as nexus:
            headers = {"Secret-Key": nexus.secret_key}
            url = f"{nexus.base_url}/projects/{nexus.project_id}/batch/jobs"
            async with httpx.AsyncClient(headers=headers) as client:
                print((await client.get(url)).json())
        ```
    """

    def __init__(self, settings: ServerSettings | None = None, /, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
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
        # The clock is set first, so the HTTP server's tasks see it too.
        with use_clock(self.clock):
            await self.restore_state()  # before the first request can see the state
            async with (
                serve_asgi(self.app, host=self.settings.host, port=self.settings.port) as url,
                self.running(),
            ):
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
