"""The pytest fixtures of ``nexus_async.testing``; needs the ``server`` extra.

One ``LocalNexus`` serves the whole session on a thread of its own, with its own event
loop (an anyio blocking portal), so it outlives every test's loop and works whatever
backend a test runs on. Each test gets a fresh project on it: its own key, jobs,
datasets and webhooks. Calls that change the server's state are run on the server's
thread through the portal; async helpers hand that blocking hop to a worker thread so
the test's own loop keeps running (a receiver served on it must answer meanwhile).
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from PIL import Image

from ._client import AsyncClient
from .models import Delivery
from .receiver import DeliveryReceiver
from .server import Fault, LocalNexus, RequestRecord, ServerSettings, serve_asgi
from .server._clock import now_ms
from .signing import generate_secret

__all__ = [
    "NexusProject",
    "NexusReceiver",
    "NexusServer",
    "nexus",
    "nexus_client",
    "nexus_receiver",
    "nexus_server",
    "nexus_settings",
]

T = TypeVar("T")

ImageLike = Image.Image | bytes
"""An image in memory: a Pillow image (sent as PNG) or the bytes of an encoded file."""


class NexusServer:
    """The session's ``LocalNexus``, running on its own thread and event loop.

    Attributes:
        core: the server itself. Read it freely; change it only through ``call``, which
            runs on the server's thread.
    """

    def __init__(self, portal: anyio.from_thread.BlockingPortal, core: LocalNexus) -> None:
        self._portal = portal
        self.core = core

    @classmethod
    @contextmanager
    def start(
        cls, settings: ServerSettings | None = None, /, **overrides: Any
    ) -> Iterator[NexusServer]:
        """Run a ``LocalNexus`` on a new thread for the duration of the block.

        Args:
            settings: the server's options (default: all defaults).
            **overrides: ``ServerSettings`` fields to change.
        """
        with anyio.from_thread.start_blocking_portal("asyncio") as portal:
            core = portal.call(lambda: LocalNexus(settings, **overrides))
            with portal.wrap_async_context_manager(core):
                yield cls(portal, core)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:port``."""
        return self.core.base_url

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on the server's thread and return its result."""
        return self._portal.call(function, *args)

    async def acall(self, function: Callable[..., T], *args: Any) -> T:
        """``call`` from async code: the test's event loop keeps running meanwhile."""
        return await anyio.to_thread.run_sync(self._portal.call, function, *args)

    async def await_on_server(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Await ``function(*args)`` on the server's event loop, from the test's."""
        return await anyio.to_thread.run_sync(self._portal.call, function, *args)


class NexusProject:
    """One test's project on the session's server: the ``nexus`` fixture.

    Attributes:
        server: the session's server (shared by every test).
        project_id: this test's project.
        secret_key: its key.
        deployment_id: its ready deployment (``deploy_...``), for ``jobs.create``.
    """

    def __init__(self, server: NexusServer, project_id: str, secret_key: str) -> None:
        self.server = server
        self.project_id = project_id
        self.secret_key = secret_key
        self.deployment_id = server.call(server.core.deployment_of, project_id)

    def __repr__(self) -> str:  # never show the key
        return f"<NexusProject project_id={self.project_id!r} base_url={self.base_url!r}>"

    @property
    def base_url(self) -> str:
        """The API's base URL, for ``AsyncClient(base_url=...)``."""
        return self.server.base_url

    def client(self, **options: Any) -> AsyncClient:
        """A new ``AsyncClient`` for this project (``options`` go to ``AsyncClient``)."""
        return AsyncClient(self.secret_key, base_url=self.base_url, **options)

    async def dataset_from_urls(self, urls: Iterable[str], name: str = "test") -> str:
        """A ready (``Uploaded``) dataset of these item URLs; return its id."""
        core = self.server.core
        items = list(urls)

        def seed() -> str:
            return core.seed_dataset(items, name, project_id=self.project_id)

        return await self.server.acall(seed)

    async def dataset_from_images(self, images: Iterable[ImageLike], name: str = "test") -> str:
        """A ready dataset of in-memory images (each becomes a ``data:`` URL); return its id."""
        return await self.dataset_from_urls((_data_url(image) for image in images), name)

    async def dataset_from_files(self, paths: Iterable[str | Path], name: str = "test") -> str:
        """A ready dataset of image files (each becomes a ``data:`` URL); return its id."""
        images = await anyio.to_thread.run_sync(lambda: [Path(p).read_bytes() for p in paths])
        return await self.dataset_from_images(images, name)

    def static_url(self, path: str) -> str:
        """The URL of ``path`` in the server's ``static_dir`` (see ``nexus_settings``)."""
        return self.server.core.static_url(path)

    async def webhook(
        self,
        endpoint: str,
        secret: str | None = None,
        *,
        max_retries: int = 3,
        max_backoff_ms: int = 1000,
    ) -> str:
        """Register a webhook in this project (a fresh secret when none is given)."""
        core = self.server.core

        def seed() -> str:
            return core.seed_webhook(
                endpoint,
                secret,
                max_retries=max_retries,
                max_backoff_ms=max_backoff_ms,
                project_id=self.project_id,
            )

        return await self.server.acall(seed)

    def now_ms(self) -> int:
        """The server's time (milliseconds since the Unix epoch)."""
        return self.server.core.now_ms()

    async def advance(self, seconds: float) -> None:
        """Move the server's manual clock ahead, running what became due (see
        ``LocalNexus.advance_to``). Needs ``clock="manual"`` in ``nexus_settings``; the
        clock is the session's, so time moves for every later test too."""
        await self.server.await_on_server(self.server.core.advance, seconds)

    async def advance_to(self, wall_ms: int) -> None:
        """Move the server's manual clock to ``wall_ms``; see ``advance``."""
        await self.server.await_on_server(self.server.core.advance_to, wall_ms)

    def duplicate_deliveries(self, copies: int = 1) -> None:
        """``LocalNexus.duplicate_deliveries`` on the shared server; undone after the test."""
        self.server.call(self.server.core.duplicate_deliveries, copies)

    def delay_deliveries(self, seconds: float) -> None:
        """``LocalNexus.delay_deliveries`` on the shared server; undone after the test."""
        self.server.call(self.server.core.delay_deliveries, seconds)

    def reorder_deliveries(self, window: float = 1.0, seed: int = 0) -> None:
        """``LocalNexus.reorder_deliveries`` on the shared server; undone after the test."""
        core = self.server.core
        self.server.call(lambda: core.reorder_deliveries(window, seed=seed))

    def drop_deliveries(self, every: int = 1) -> None:
        """``LocalNexus.drop_deliveries`` on the shared server; undone after the test."""
        self.server.call(self.server.core.drop_deliveries, every)

    def inject_fault(self, **fault: Any) -> Fault:
        """``LocalNexus.inject_fault`` on the shared server; cleared after the test."""
        core = self.server.core
        return self.server.call(lambda: core.inject_fault(**fault))

    @property
    def requests(self) -> list[RequestRecord]:
        """The API requests made to this project so far, in arrival order."""
        prefix = f"/projects/{self.project_id}/"
        return [
            r
            for r in self.server.call(lambda: self.server.core.requests)
            if r.path.startswith(prefix)
        ]

    def _finish(self) -> None:
        """End the test's running jobs, faults and delivery scenarios, so that they
        cannot touch the next test."""
        core = self.server.core

        def finish() -> None:
            core.clear_faults()
            core.normal_deliveries()
            now = now_ms()
            for job in list(core.store.jobs_by_id.values()):
                if job.project_id == self.project_id and not job.terminal:
                    core.runner.cancel(job, now)

        self.server.call(finish)


class NexusReceiver:
    """A ``DeliveryReceiver`` on loopback with a webhook registered for it.

    Attributes:
        receiver: the ``DeliveryReceiver`` (it verifies signatures and drops duplicates).
        webhook_id: the webhook of the test's project that delivers here.
        secret: that webhook's secret.
        url: the endpoint the webhook posts to.
        deliveries: every new delivery received, in arrival order.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.receiver = DeliveryReceiver(secret, self._received)
        self.webhook_id = ""
        self.url = ""
        self.deliveries: list[Delivery] = []
        self._arrived = anyio.Event()

    async def _received(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def wait_for(self, count: int, *, timeout: float = 30.0) -> list[Delivery]:
        """Wait until ``count`` deliveries have arrived; return them all.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        with anyio.move_on_after(timeout):
            while len(self.deliveries) < count:
                await self._arrived.wait()
            return list(self.deliveries)
        raise TimeoutError(
            f"{len(self.deliveries)} of {count} deliveries arrived within {timeout} s"
        )


def _data_url(image: ImageLike) -> str:
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        image = buffer.getvalue()
    if not isinstance(image, bytes):
        raise TypeError(f"an image must be a PIL image or bytes (got {type(image).__name__})")
    kind = Image.open(io.BytesIO(image)).format or "png"
    return f"data:image/{kind.lower()};base64,{base64.b64encode(image).decode()}"


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def nexus_settings() -> ServerSettings:
    """The session server's options; override this fixture to change them, e.g.
    ``ServerSettings(static_dir="tests/images", clock="manual")``."""
    return ServerSettings()


@pytest.fixture(scope="session")
def nexus_server(nexus_settings: ServerSettings) -> Iterator[NexusServer]:
    """The session's ``LocalNexus``, on a thread and event loop of its own."""
    with NexusServer.start(nexus_settings) as server:
        yield server


@pytest.fixture
def nexus(nexus_server: NexusServer) -> Iterator[NexusProject]:
    """A fresh project on the session's server; its jobs are cancelled after the test."""
    project_id, secret_key = nexus_server.call(nexus_server.core.add_project)
    project = NexusProject(nexus_server, project_id, secret_key)
    try:
        yield project
    finally:
        project._finish()


@pytest.fixture
async def nexus_client(nexus: NexusProject) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` for the test's project, inside ``async with`` for the test."""
    async with nexus.client() as client:
        yield client


@pytest.fixture
async def nexus_receiver(nexus: NexusProject) -> AsyncIterator[NexusReceiver]:
    """A ``DeliveryReceiver`` served on loopback (on the test's event loop), with a
    webhook of the test's project pointing at it."""
    received = NexusReceiver(generate_secret())
    async with serve_asgi(received.receiver.app("/deliveries")) as url:
        received.url = f"{url}/deliveries"
        received.webhook_id = await nexus.webhook(received.url, received.secret)
        yield received
