"""Throughput of the local Nexus server's pipeline, and how it scales with concurrency.

One job of N small PNG images runs through gather -> decode -> predict -> signed delivery
to a webhook receiver on loopback, once per ``item_concurrency`` setting, and the results
are printed as markdown tables. Two scenarios by default:

1. 10,000 images and a receiver that answers at once: the raw cost of the pipeline;
2. 2,000 images and a receiver that takes ``--receiver-latency`` (20 ms) per delivery, as
   a real endpoint does: what concurrency is for.

    .venv/bin/python benchmarks/bench_server_throughput.py
    .venv/bin/python benchmarks/bench_server_throughput.py --items 2000 --concurrency 1,8 \
        --source static --backend trio

Items are ``data:`` URLs by default, or files of the server's static folder fetched over
HTTP (``--source static``, one more HTTP exchange per item). Server, runner, receiver and
client share one process and one event loop, so with an instant receiver the pipeline is
CPU-bound from concurrency 1 and more concurrency cannot help; it costs a little, since
httpcore's connection pool scans its connections (quadratically in idle ones) whenever a
request starts or ends. With a slow receiver, concurrency overlaps the waiting.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from PIL import Image, ImageDraw
from starlette.types import Receive, Scope, Send

from nexus_async.server import LocalNexus, serve_asgi


def png(index: int) -> bytes:
    """A 32x32 grayscale image with a dark square that moves with ``index``."""
    image = Image.new("L", (32, 32), 255)
    offset = index % 16
    ImageDraw.Draw(image).rectangle((offset, offset, offset + 12, offset + 12), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class CountingReceiver:
    """The cheapest possible webhook: a raw ASGI app that counts deliveries."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to set up or tear down
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if self.latency:
            await anyio.sleep(self.latency)
        self.received += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Result:
    concurrency: int
    items: int
    seconds: float
    delivered: int
    overview: str

    @property
    def rate(self) -> float:
        return self.items / self.seconds


async def run_once(
    concurrency: int,
    items: int,
    source: str,
    images: dict[str, bytes],
    static_dir: Path,
    timeout: float,
    receiver_latency: float,
) -> Result:
    receiver = CountingReceiver(receiver_latency)
    async with (
        serve_asgi(receiver) as receiver_url,
        LocalNexus(static_dir=static_dir, item_concurrency=concurrency) as nexus,
        httpx.AsyncClient(
            base_url=f"{nexus.base_url}/projects/{nexus.project_id}/batch/",
            headers={"Secret-Key": nexus.secret_key},
            trust_env=False,
        ) as client,
    ):
        if source == "static":
            pool = [nexus.static_url(name) for name in images]
        else:
            pool = [
                "data:image/png;base64," + base64.b64encode(content).decode()
                for content in images.values()
            ]
        urls = [pool[i % len(pool)] for i in range(items)]
        dataset_id = nexus.seed_dataset(urls)
        webhook_id = nexus.seed_webhook(receiver_url + "/hook", max_retries=0)
        body = {
            "name": f"bench-{concurrency}",
            "spec": {
                "datasetId": dataset_id,
                "deployment": {"kind": "ExistingDeployment", "deploymentId": nexus.deployment_id},
                "resultDelivery": {"destinations": [{"kind": "Webhook", "webhookId": webhook_id}]},
            },
        }
        started = time.perf_counter()
        job = (await client.post("jobs", json=body)).json()
        with anyio.fail_after(timeout):
            while True:
                job = (await client.get(f"jobs/{job['id']}")).json()
                if job["status"]["overview"] in ("Reached", "Failed"):
                    break
                await anyio.sleep(0.05)
        seconds = time.perf_counter() - started
        return Result(
            concurrency,
            items,
            seconds,
            job["status"]["items"]["Delivered"],
            job["status"]["overview"],
        )


@dataclass
class Scenario:
    items: int
    receiver_latency: float
    results: list[Result]


async def main(args: argparse.Namespace) -> list[Scenario]:
    scenarios = [Scenario(args.items, 0.0, [])]
    if args.latency_items > 0 and args.receiver_latency > 0:
        scenarios.append(Scenario(args.latency_items, args.receiver_latency, []))
    with tempfile.TemporaryDirectory() as folder:
        static_dir = Path(folder)
        images = {f"img{index:02d}.png": png(index) for index in range(16)}
        for name, content in images.items():
            (static_dir / name).write_bytes(content)
        for scenario in scenarios:
            for concurrency in args.concurrency:
                result = await run_once(
                    concurrency,
                    scenario.items,
                    args.source,
                    images,
                    static_dir,
                    args.timeout,
                    scenario.receiver_latency,
                )
                scenario.results.append(result)
                print(
                    f"{scenario.items} items, receiver {scenario.receiver_latency * 1000:g} ms, "
                    f"item_concurrency={concurrency}: {result.rate:,.0f} items/s",
                    file=sys.stderr,
                    flush=True,
                )
    return scenarios


def table(scenario: Scenario, args: argparse.Namespace) -> str:
    base = scenario.results[0].rate
    lines = [
        f"One job of {scenario.items:,} images ({args.source} URLs), receiver answering in "
        f"{scenario.receiver_latency * 1000:g} ms, backend {args.backend}:",
        "",
        "| item_concurrency | items | seconds | items/s | speed-up | delivered | overview |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in scenario.results:
        lines.append(
            f"| {r.concurrency} | {r.items:,} | {r.seconds:.2f} | {r.rate:,.0f} "
            f"| {r.rate / base:.1f}x | {r.delivered:,} | {r.overview} |"
        )
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--items", type=int, default=10_000, help="items, instant receiver")
    parser.add_argument(
        "--latency-items", type=int, default=2_000, help="items, slow receiver (0: skip)"
    )
    parser.add_argument(
        "--receiver-latency", type=float, default=0.02, help="seconds per delivery, slow receiver"
    )
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 4, 16, 64],
        help="comma-separated item_concurrency values",
    )
    parser.add_argument("--source", choices=("data", "static"), default="data")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed per run")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    outcome = anyio.run(main, arguments, backend=arguments.backend)
    print("\n\n".join(table(scenario, arguments) for scenario in outcome))
