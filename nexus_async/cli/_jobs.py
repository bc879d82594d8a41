"""`nexus-async jobs ...`: list, get, create, cancel, delete, wait for and read jobs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .. import LogLevel, WaitTimeoutError
from ._base import Actions, Exit, positive
from ._listing import add_flags, listing
from ._logs import OldestFirst
from ._render import detail, json_out, log_line, show, when

if TYPE_CHECKING:
    from rich.console import Console

    from .. import Batch, Job, JobLogEntry

__all__ = ["register"]


async def _list(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    return await listing(
        args,
        out,
        batch.jobs.list,
        "job",
        ("name", "overview", "message", "delivered", "failed", "created"),
        lambda job: (
            job.name,
            str(job.status.overview),
            job.status.message,
            str(job.status.items.delivered),
            str(job.status.items.failed),
            when(job.create_date),
        ),
        right=("delivered", "failed"),
    )


async def _get(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    job = await batch.jobs.get(args.job_id)
    detail(args, out, job, job.id)
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
    job = await batch.jobs.get(args.job_id)
    if job.is_finished:
        # The API would answer a cancel with the unchanged job: say so instead.
        print(
            f"{job.id} had already finished ({job.status.overview}: {job.status.message}); "
            "nothing to cancel",
            file=sys.stderr,
        )
        if args.json:
            json_out(job)
        return Exit.ALREADY_FINISHED
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

        try:
            job = await batch.jobs.wait_until_done(
                args.job_id,
                interval=args.interval,
                timeout=args.timeout,
                raise_exception_if=None,
                on_update=update,
            )
        except WaitTimeoutError as exc:
            last = exc.job
            state = (
                "no answer from the API yet"
                if last is None
                else f"still {last.status.message}, {last.status.items.ended} items ended"
            )
            print(
                f"timed out after {args.timeout} s waiting for {args.job_id}: {state}",
                file=sys.stderr,
            )
            return Exit.TIMED_OUT
    detail(args, out, job, job.id)
    return Exit.JOB_FAILED if str(job.status.overview) == "Failed" else Exit.OK


async def _logs(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    printed = 0

    def emit(entry: JobLogEntry) -> bool:
        """Print `entry` unless `--max-entries` were printed already (then say so)."""
        nonlocal printed
        if args.max_entries is not None and printed >= args.max_entries:
            print(
                f"stopped after {printed} entries (--max-entries {args.max_entries}); "
                "the log has more",
                file=sys.stderr,
            )
            return False
        printed += 1
        show(args, out, entry, log_line(entry))
        return True

    backlog = OldestFirst(batch.jobs, args.job_id, args.min_level)
    async for entry in backlog:
        if not emit(entry):
            return Exit.OK
    if not args.follow:
        return Exit.OK
    # Continue from the newest millisecond printed, skipping what was printed in it.
    after = None if backlog.last_time is None else backlog.last_time - 1
    async for entry in batch.jobs.follow_logs(
        args.job_id, min_level=args.min_level, after_time=after
    ):
        last = backlog.last_time
        if last is not None and (
            entry.create_time < last or (entry.create_time == last and entry.id in backlog.last_ids)
        ):
            continue  # printed already (follow_logs also yields the `after_time` millisecond)
        if not emit(entry):
            return Exit.OK
    return Exit.OK


def _level(text: str) -> str:
    """A log level named in any case, as the API spells it."""
    for level in LogLevel:
        if text.lower() == level.value.lower():
            return level.value
    raise argparse.ArgumentTypeError(
        f"unknown level {text!r} (choose from {', '.join(lv.value for lv in LogLevel)})"
    )


def register(action: Actions) -> None:
    """Add the `jobs` actions through `action(name, handler, help)`."""
    add_flags(action("list", _list, "list jobs, newest first"))
    action("get", _get, "show one job").add_argument("job_id")
    p = action("create", _create, "create a job")
    p.add_argument("name")
    p.add_argument("--dataset-id", required=True)
    p.add_argument("--webhook-id", required=True)
    p.add_argument("--deployment-id", help="an existing deployment (or --artifact-id)")
    p.add_argument("--artifact-id", help="an ephemeral deployment of this artifact")
    p.add_argument("--start-at-time", type=int, help="epoch ms (default: now)")
    p.add_argument("--stop-at-time", type=int, help="epoch ms (default: the API's)")
    action("cancel", _cancel, "cancel a job").add_argument("job_id")
    action("delete", _delete, "delete a job").add_argument("job_id")
    p = action("wait", _wait, "wait for a job to finish, with a progress bar")
    p.add_argument("job_id")
    p.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="longest wait between polls, in seconds (default: %(default)s)",
    )
    p.add_argument(
        "--timeout", type=float, help="give up after this many seconds, exit 4 (default: never)"
    )
    p = action("logs", _logs, "print a job's whole log, oldest first")
    p.add_argument("job_id")
    p.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    p.add_argument(
        "--min-level",
        type=_level,
        metavar="LEVEL",
        help="lowest level shown: debug, info, warning or error, in any case (default: all)",
    )
    p.add_argument(
        "--max-entries",
        type=positive,
        metavar="N",
        help="stop after the oldest N entries, saying so on stderr (default: the whole log)",
    )
