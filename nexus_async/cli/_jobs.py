"""`nexus-async jobs ...`: list, get, create, cancel, delete, wait for and read jobs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._base import Exit
from ._render import job_detail, jobs_table, json_out, log_line, show

if TYPE_CHECKING:
    from rich.console import Console

    from .._client import Batch
    from ..models import Job, JobLogEntry
    from ._app import Actions

__all__ = ["register"]


async def _list(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    if args.all:
        found = [job async for job in batch.jobs.iter()]
        next_page = None
    else:
        page = await batch.jobs.list({"limit": args.limit, "page": args.page})
        found, next_page = page.data, page.next_page
    if args.json:
        for job in found:
            json_out(job)
        return Exit.OK
    out.print(jobs_table(found, f"{len(found)} job(s)"))
    if next_page:
        out.print(f"more: nexus-async jobs list --page {next_page}")
    return Exit.OK


async def _get(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    job = await batch.jobs.get(args.job_id)
    show(args, out, job, job_detail(job))
    return Exit.OK


async def _create(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    options: dict[str, Any] = {"dataset_id": args.dataset_id, "webhook_id": args.webhook_id}
    for key in ("deployment_id", "artifact_id", "start_at_time", "stop_at_time"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    job = await batch.jobs.create(args.name, options)
    show(args, out, job, f"created {job.id} ({job.status.overview}: {job.status.message})")
    return Exit.OK


async def _cancel(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    job = await batch.jobs.cancel(args.job_id)
    text = f"cancel requested for {job.id} ({job.status.overview}: {job.status.message})"
    show(args, out, job, text)
    return Exit.OK


async def _delete(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    result = await batch.jobs.delete(args.job_id)
    show(args, out, result, f"deleted {result.id}")
    return Exit.OK


async def _wait(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # Bars only on a terminal: a file or pipe gets the final result alone.
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=args.json or not out.is_terminal,
    ) as bars:
        task = bars.add_task(args.job_id, total=None, counts="")

        def update(job: Job) -> None:
            c = job.status.items
            bars.update(
                task,
                completed=c.ended,
                counts=f"{job.status.message}: {c.gathered} gathered, {c.predicted} predicted, "
                f"{c.delivered} delivered",
            )

        job = await batch.jobs.wait_until_done(
            args.job_id,
            interval=args.interval,
            timeout=args.timeout,
            raise_exception_if=None,
            on_update=update,
        )
    show(args, out, job, job_detail(job))
    return Exit.API_ERROR if str(job.status.overview) == "Failed" else Exit.OK


async def _logs(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    def emit(entry: JobLogEntry) -> None:
        show(args, out, entry, log_line(entry), markup=False)

    if args.follow:
        async for entry in batch.jobs.follow_logs(args.job_id, min_level=args.min_level):
            emit(entry)
        return Exit.OK
    flt: dict[str, Any] = {"min_level": args.min_level}
    entries: list[JobLogEntry] = []
    async for entry in batch.jobs.get_all_logs(args.job_id, flt):
        entries.append(entry)
        if len(entries) >= args.max_entries:
            break
    for entry in reversed(entries):  # oldest first, like a log file
        emit(entry)
    return Exit.OK


def register(action: Actions) -> None:
    """Add the `jobs` actions through `action(name, handler, help)`."""
    p = action("list", _list, "list jobs, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--page", help="a page cursor from a previous list")
    p.add_argument("--all", action="store_true", help="every page")
    action("get", _get, "show one job").add_argument("job_id")
    p = action("create", _create, "create a job")
    p.add_argument("name")
    p.add_argument("--dataset-id", required=True)
    p.add_argument("--webhook-id", required=True)
    p.add_argument("--deployment-id")
    p.add_argument("--artifact-id")
    p.add_argument("--start-at-time", type=int, help="epoch ms")
    p.add_argument("--stop-at-time", type=int, help="epoch ms")
    action("cancel", _cancel, "cancel a job").add_argument("job_id")
    action("delete", _delete, "delete a job").add_argument("job_id")
    p = action("wait", _wait, "wait for a job to finish, with a progress bar")
    p.add_argument("job_id")
    p.add_argument("--interval", type=float, default=5.0, help="longest poll interval (s)")
    p.add_argument("--timeout", type=float, default=None, help="give up after (s)")
    p = action("logs", _logs, "print a job's log, oldest first")
    p.add_argument("job_id")
    p.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    p.add_argument("--min-level", choices=["Debug", "Info", "Warning", "Error"])
    p.add_argument("--max-entries", type=int, default=1000, help="newest N (without --follow)")
