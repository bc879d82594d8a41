"""`nexus-async demo`: the whole product end to end, offline, in under a minute.

It starts the local Nexus server and a webhook receiver in-process, makes a few
hundred small images in a temporary directory (some corrupt, some missing, so
that failures show), uploads them as datasets, creates a webhook and several
jobs at once, draws a progress bar per job while waiting on all of them with
the SDK's many-job waiting, streams some log lines, and ends with a summary per
job and a sample of the predictions the receiver verified. The exit status is 0
only if every item is accounted for. Everything it writes lives in the temporary
directory, removed on exit.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .. import AsyncClient, Batch, Dataset, Delivery, DeliveryReceiver, Job, JobLogEntry, LogLevel
from ..signing import generate_secret
from ._base import Exit
from ._render import console as make_console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from .._waiting import JobProgress
    from ..server import LocalNexus

__all__ = ["register"]

_IMAGE_SIZE = 96
_ERROR_NAME = re.compile(r"\b[A-Z]\w*Error: ")


def _make_images(folder: Path, count: int, rng: random.Random) -> tuple[list[str], int, int]:
    """Write `count` item files; return their names and how many are corrupt and missing."""
    from PIL import Image, ImageDraw

    names: list[str] = []
    corrupt = max(1, count // 20)
    missing = max(1, count // 30)
    for index in range(count):
        name = f"item-{index:04d}.png"
        names.append(name)
        if index % 20 == 7 and corrupt:
            (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n" + rng.randbytes(200))
            corrupt -= 1
        elif index % 30 == 13 and missing:
            missing -= 1  # listed in the dataset, never written: the gather gets a 404
        else:
            shade = rng.randint(0, 50)
            image = Image.new("L", (_IMAGE_SIZE, _IMAGE_SIZE), shade)
            x0, y0 = rng.randint(0, 60), rng.randint(0, 60)
            x1, y1 = x0 + rng.randint(12, 35), y0 + rng.randint(12, 35)
            ImageDraw.Draw(image).rectangle((x0, y0, x1, y1), fill=rng.randint(180, 255))
            image.save(folder / name, format="PNG")
    return names, max(1, count // 20) - corrupt, max(1, count // 30) - missing


def _reason(entry: JobLogEntry, width: int) -> str:
    """An entry's reason for one terminal line: without the item's URL (shown beside it),
    exception class names and object reprs, cut to `width` characters."""
    reason = (entry.reason or "").replace(f"GET {entry.item} ", "").split(" <", 1)[0]
    reason = _ERROR_NAME.sub("", reason)
    return reason if len(reason) <= width else reason[: width - 1] + "…"


def _split(names: list[str], parts: int) -> list[list[str]]:
    """Uneven shares (3:2:1...) so the bars move at different speeds."""
    weights = list(range(parts, 0, -1))
    total = sum(weights)
    shares: list[list[str]] = []
    start = 0
    for i, weight in enumerate(weights):
        end = len(names) if i == parts - 1 else start + len(names) * weight // total
        shares.append(names[start:end])
        start = end
    return shares


class _Received:
    """The deliveries the demo's receiver verified, by job and delivery id."""

    def __init__(self) -> None:
        self.by_job: dict[str, dict[str, Delivery]] = {}

    async def add(self, delivery: Delivery) -> None:
        self.by_job.setdefault(delivery.job_id, {})[delivery.delivery_id] = delivery

    def count(self, job_id: str) -> int:
        return len(self.by_job.get(job_id, {}))

    def all(self) -> list[Delivery]:
        return [d for per_job in self.by_job.values() for d in per_job.values()]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the `demo` command."""
    demo = commands.add_parser("demo", help="run batch jobs end to end on a local server")
    demo.add_argument("--items", type=int, default=300, help="images in all (default 300)")
    demo.add_argument("--jobs", type=int, default=3, help="jobs run at once (default 3)")
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    console = make_console()
    if not 10 <= args.items <= 5000 or not 1 <= args.jobs <= 10:
        console.print("[red]error:[/] --items must be 10..5000 and --jobs 1..10")
        return Exit.USAGE
    code: int = anyio.run(_demo, args.items, args.jobs, console)
    return code


async def _demo(items: int, job_count: int, console: Console) -> int:
    from rich.rule import Rule
    from starlette.applications import Starlette

    from ..server import LocalNexus, serve_asgi

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nexus-async-demo-") as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        names, corrupt, missing = _make_images(images, items, random.Random(7))
        received = _Received()
        secret = generate_secret()
        receiver = DeliveryReceiver(secret, received.add)
        # The receiver's workers are entered first and left last: leaving `running()`
        # waits until every queued delivery is processed, so the counts below are final.
        async with (
            receiver.running(),
            LocalNexus(static_dir=images) as nexus,
            serve_asgi(Starlette(routes=[receiver.route("/nexus/results")])) as receiver_url,
            AsyncClient(nexus.secret_key, base_url=nexus.base_url) as client,
        ):
            batch = client.get_project(nexus.project_id).batch
            console.print(Rule("nexus-async demo"))
            console.print(f"local Nexus server  {nexus.base_url}")
            console.print(f"project             {nexus.project_id}")
            console.print(f"webhook receiver    {receiver_url}/nexus/results")
            console.print(
                f"{items} images in a temporary folder: {corrupt} corrupt, "
                f"{missing} missing (their URLs answer 404)"
            )
            datasets = await _upload_datasets(batch, nexus, root, names, job_count, console)
            webhook = await batch.webhooks.create(
                "demo-receiver",
                {"endpoint": f"{receiver_url}/nexus/results", "secret": {"contents": secret}},
            )
            console.print(f"webhook {webhook.id}")
            created = await _start_jobs(batch, datasets, webhook.id, nexus.deployment_id)
            totals = {
                job.id: ds.status.item_count for job, ds in zip(created, datasets, strict=True)
            }
            console.print(f"started {len(created)} jobs; waiting on all of them together")
            console.print()
            finals = await _wait_with_bars(batch, created, totals, console)

    console.print()
    table, all_accounted = _summary(finals, totals, received)
    console.print(table)
    console.print(_predictions(received.all()))
    elapsed = time.perf_counter() - started
    if all_accounted:
        console.print(f"signatures verified, no duplicates; {elapsed:.1f} s in all")
        console.print(f"[green]every item accounted for[/]: {items} items in {len(finals)} jobs")
        return Exit.OK
    console.print("[red]some items are not accounted for[/] (see the table above)")
    return Exit.API_ERROR


async def _upload_datasets(
    batch: Batch,
    nexus: LocalNexus,
    root: Path,
    names: list[str],
    job_count: int,
    console: Console,
) -> list[Dataset]:
    """One NDJSON file per job, checksummed and streamed up; each waited until processed."""
    datasets = []
    for index, share in enumerate(_split(names, job_count)):
        path = root / f"dataset-{index + 1}.ndjson"
        path.write_text(
            "".join(f'{{"kind": "Image", "url": "{nexus.static_url(name)}"}}\n' for name in share)
        )
        dataset = await batch.datasets.create(f"demo-{index + 1}", path)
        dataset = await batch.datasets.wait_until_done(dataset.id, interval=0.2)
        datasets.append(dataset)
        console.print(
            f"dataset {dataset.id}  {dataset.status.item_count:>4} items  {dataset.status.overview}"
        )
    return datasets


async def _start_jobs(
    batch: Batch, datasets: Sequence[Dataset], webhook_id: str, deployment_id: str
) -> list[Job]:
    """One job per dataset, all delivering to the demo's webhook."""
    created = []
    for index, dataset in enumerate(datasets):
        options = {
            "dataset_id": dataset.id,
            "webhook_id": webhook_id,
            "deployment_id": deployment_id,
        }
        created.append(await batch.jobs.create(f"demo-job-{index + 1}", options))
    return created


async def _wait_with_bars(
    batch: Batch, created: Sequence[Job], totals: dict[str, int], console: Console
) -> list[Job]:
    """A progress bar per job from one coalesced poll, beside a few live log lines."""
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description:<6}"),
        BarColumn(bar_width=12),
        TextColumn("{task.fields[counts]}"),
        console=console,
        transient=False,
    ) as bars:
        tasks = {
            job.id: bars.add_task(job.name.removeprefix("demo-"), total=totals[job.id], counts="")
            for job in created
        }

        def show(progress: JobProgress) -> None:
            c = progress.job.status.items
            eta = (
                f"  eta {progress.eta_seconds:4.1f}s"
                if progress.eta_seconds and not progress.job.is_finished
                else ""
            )
            bars.update(
                tasks[progress.job.id],
                completed=progress.ended,
                counts=(
                    f"delivered {c.delivered:>4} · [red]failed {c.failed:>3}[/] · "
                    f"of {totals[progress.job.id]}{eta}"
                ),
            )

        console.print(f"[dim]following the log of {created[0].name}:[/]")
        async with anyio.create_task_group() as tg:
            tg.start_soon(_follow_log, batch, created[0], bars)
            finals = await batch.jobs.wait_all(
                [job.id for job in created],
                interval=0.5,
                raise_exception_if=None,
                on_progress=show,
                totals=totals,
            )
    return finals


async def _follow_log(batch: Batch, job: Job, bars: Progress) -> None:
    """Print the first few entries of `job`'s log (and its errors), then count the rest."""
    shown = hidden = 0
    async for entry in batch.jobs.follow_logs(job.id, interval=0.3):
        is_error = entry.level == LogLevel.ERROR
        if shown < 8 and (is_error or shown < 3):
            shown += 1
            item = entry.item.rsplit("/", 1)[-1]
            style = "red" if is_error else "dim"
            bars.console.print(
                f"[{style}]log {entry.kind:<12} {item:<13}  {_reason(entry, 48)}[/]",
                highlight=False,
                overflow="ellipsis",
                no_wrap=True,
            )
        else:
            hidden += 1
    bars.console.print(f"[dim]log ... and {hidden} more entries of {job.name}[/]")


def _summary(
    finals: Sequence[Job], totals: dict[str, int], received: _Received
) -> tuple[Table, bool]:
    """The table of jobs, and whether every item of every job is accounted for."""
    from rich.table import Table

    table = Table(
        title="jobs (failed at: g gather, d decode, p predict, w webhook delivery)",
        title_justify="left",
    )
    # Seven narrow columns: the table fits 80 columns with every number whole.
    columns = ("job", "status", "items", "delivered", "failed g/d/p/w", "received", "items/s")
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("job", "status") else "right", no_wrap=True
        )
    all_accounted = True
    for job in finals:
        c = job.status.items
        total = totals[job.id]
        got = received.count(job.id)
        all_accounted &= c.ended == total and got == c.delivered and job.is_finished
        start = job.spec.start_at_time or job.create_date
        seconds = max(0.001, (job.status.update_date - start) / 1000)
        table.add_row(
            job.name.removeprefix("demo-"),
            f"{job.status.overview}",
            str(total),
            str(c.delivered),
            f"{c.failed} = {c.failed_gather}/{c.failed_process}/{c.failed_predict}/"
            f"{c.failed_deliver}",
            str(got) if got == c.delivered else f"[red]{got}[/]",
            f"{total / seconds:.0f}",
        )
    return table, all_accounted


def _predictions(deliveries: list[Delivery]) -> Table:
    """A sample of five verified deliveries: item, tag, confidence and box."""
    from rich.table import Table

    deliveries.sort(key=lambda d: d.item.url)
    table = Table(title="predictions verified by the receiver (sample)", title_justify="left")
    for column in ("item", "tag", "confidence", "box (x0, y0) - (x1, y1)"):
        table.add_column(column)
    for delivery in deliveries[:: max(1, len(deliveries) // 5)][:5]:
        for p in delivery.predictions[:1]:
            xs = [point[0] for point in p.bound]
            ys = [point[1] for point in p.bound]
            table.add_row(
                delivery.item.url.rsplit("/", 1)[-1],
                p.tag.name,
                f"{p.confidence:.2f}",
                f"({min(xs):.2f}, {min(ys):.2f}) - ({max(xs):.2f}, {max(ys):.2f})",
            )
    return table
