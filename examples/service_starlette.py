"""A Starlette service that starts batch jobs and receives their results.

    POST /jobs                  start a job over the configured dataset -> {"id": ...}
    GET  /jobs/{job_id}         the job's status and how many results arrived
    POST /webhooks/nexus        where the API delivers results (verified, de-duplicated)

One `AsyncClient` lives for the whole app (its lifespan), so every request shares
one connection pool. Run as is (`.venv/bin/python examples/service_starlette.py`), it
serves itself on loopback, calls its own endpoints once and exits: against a local
Nexus server it starts, or, with the environment `nexus-async serve` prints, against
that server (with a webhook of its own pointing at itself, removed afterwards). In
production, serve `build_app(...)` with any ASGI server at an address the API reaches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nexus_async import Delivery, DeliveryReceiver, NotFoundError

from _setup import Setup, project

received: Counter[str] = Counter()  # results per job; a real service would store them


async def store(delivery: Delivery) -> None:
    received[delivery.job_id] += 1


class Service:
    """What the routes need: the project (set once it exists) and the receiver."""

    def __init__(self, receiver: DeliveryReceiver) -> None:
        self.receiver = receiver
        self.setup: Setup | None = None

    @property
    def project(self) -> Setup:
        if self.setup is None:
            raise RuntimeError("the service has no project yet")
        return self.setup


def build_app(service: Service) -> Starlette:
    """The service's routes; the receiver runs in the app's lifespan."""

    async def start_job(request: Request) -> JSONResponse:
        body = await request.json()
        setup = service.project
        job = await setup.batch.jobs.create(
            str(body.get("name", "via-service")), setup.job_options()
        )
        return JSONResponse({"id": job.id}, status_code=201)

    async def job_status(request: Request) -> JSONResponse:
        try:
            job = await service.project.batch.jobs.get(request.path_params["job_id"])
        except NotFoundError:
            return JSONResponse({"message": "no such job"}, status_code=404)
        return JSONResponse(
            {
                "id": job.id,
                "overview": str(job.status.overview),
                "delivered": job.status.items.delivered,
                "received": received[job.id],
            }
        )

    return Starlette(
        routes=[
            Route("/jobs", start_job, methods=["POST"]),
            Route("/jobs/{job_id}", job_status),
            service.receiver.route("/webhooks/nexus"),
        ],
        lifespan=service.receiver.lifespan,
    )


@asynccontextmanager
async def local_service() -> AsyncIterator[str]:
    """Serve the app on loopback, with the project of `_setup`; yield its URL."""
    from nexus_async.server import serve_asgi
    from nexus_async.signing import generate_secret

    secret = generate_secret()
    service = Service(DeliveryReceiver(secret, store))
    # The webhook must point at the service, so serve it before making the project.
    async with (
        serve_asgi(build_app(service)) as url,
        project(items=10, webhook=(f"{url}/webhooks/nexus", secret)) as setup,
    ):
        service.setup = setup
        yield url


async def main() -> None:
    async with local_service() as url, httpx.AsyncClient(base_url=url) as http:
        job_id = (await http.post("/jobs", json={"name": "via-service"})).json()["id"]
        print(f"service started {job_id}")
        with anyio.fail_after(60):
            while True:
                status = (await http.get(f"/jobs/{job_id}")).json()
                if status["overview"] != "Waiting" and status["received"] == status["delivered"]:
                    break
                await anyio.sleep(0.2)
        print(f"{job_id} {status['overview']}: {status['received']} results received")


if __name__ == "__main__":
    anyio.run(main)
