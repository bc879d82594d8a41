"""The `nexus-async` command, built on the SDK itself.

    nexus-async serve                      run the local Nexus batch server
    nexus-async demo                       the whole product, end to end, offline
    nexus-async jobs list|get|create|cancel|delete|wait|logs [--follow]
    nexus-async datasets create|list|get|delete
    nexus-async webhooks create|list|get|delete|test

The key, URL and project come from `--secret-key`/`--base-url`/`--project-id` or
`DATATURE_SECRET_KEY`/`DATATURE_API_BASE_URL`/`DATATURE_PROJECT_ID`. Tables are
drawn with rich; `--json` prints the API's JSON instead (one object, or one per
line for logs) for scripts. Errors print one line to stderr and exit non-zero;
Ctrl-C exits 130 without a traceback. Secrets are never printed.

Heavy pieces (rich, the server) are imported inside the command that needs them,
so `import nexus_async` stays light.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from . import errors
from .models import Webhook

if TYPE_CHECKING:
    from rich.console import Console

    from ._client import AsyncClient, Batch
    from .models import Job, JobLogEntry

__all__ = ["main"]

Handler = Callable[[argparse.Namespace, "Batch", "Console"], Awaitable[None]]


class _Usage(Exception):
    """A mistake on the command line, reported as one line with exit status 2."""


def _console(stderr: bool = False) -> Console:
    try:
        from rich.console import Console
    except ImportError:
        raise _Usage("this command needs the `cli` extra: pip install 'nexus-async[cli]'") from None
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _json_out(data: Any) -> None:
    from ._convert import unstructure

    sys.stdout.write(json.dumps(unstructure(data), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _show(args: argparse.Namespace, out: Console, value: Any, text: Any, **options: Any) -> None:
    """`value` as the API's JSON with `--json`, else `text` for people."""
    if args.json:
        _json_out(value)
    else:
        out.print(text, **options)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------- jobs


def _jobs_table(jobs: Sequence[Job], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in ("name", "overview", "message", "delivered", "failed", "created"):
        table.add_column(column, justify="right" if column in ("delivered", "failed") else "left")
    for job in jobs:
        c = job.status.items
        table.add_row(
            job.id,
            _short(job.name, 24),
            str(job.status.overview),
            job.status.message,
            str(c.delivered),
            str(c.failed),
            _when(job.create_date),
        )
    return table


def _job_detail(job: Job) -> Any:
    from rich.table import Table

    table = Table(show_header=False, title=job.id, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    status = job.status
    rows = [
        ("name", job.name),
        ("overview", str(status.overview)),
        ("message", status.message),
        ("reason", status.reason or "-"),
        ("dataset", job.spec.dataset_id),
        ("deployment", repr(job.spec.deployment)),
        ("start at", _when(job.spec.start_at_time)),
        ("stop at", _when(job.spec.stop_at_time)),
        ("cancelled at", _when(status.cancelled_at)),
        ("created", _when(job.create_date)),
        ("updated", _when(job.update_date)),
    ]
    for name in (
        "gathered",
        "failed_gather",
        "preprocessed",
        "failed_process",
        "predicted",
        "failed_predict",
        "delivered",
        "failed_deliver",
    ):
        rows.append((name.replace("_", " "), str(getattr(status.items, name))))
    for key, value in rows:
        table.add_row(key, value)
    return table


def _log_line(entry: JobLogEntry) -> str:
    reason = f"  {entry.reason}" if entry.reason else ""
    return (
        f"{_when(entry.create_time)}  {entry.level!s:<7} {entry.kind:<16} "
        f"{entry.status:<12} {entry.item}{reason}"
    )


async def _jobs_list(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    if args.all:
        found = [job async for job in batch.jobs.iter()]
        next_page = None
    else:
        page = await batch.jobs.list({"limit": args.limit, "page": args.page})
        found, next_page = page.data, page.next_page
    if args.json:
        for job in found:
            _json_out(job)
        return
    out.print(_jobs_table(found, f"{len(found)} job(s)"))
    if next_page:
        out.print(f"more: nexus-async jobs list --page {next_page}")


async def _jobs_get(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    job = await batch.jobs.get(args.job_id)
    _show(args, out, job, _job_detail(job))


async def _jobs_create(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    options: dict[str, Any] = {"dataset_id": args.dataset_id, "webhook_id": args.webhook_id}
    for key in ("deployment_id", "artifact_id", "start_at_time", "stop_at_time"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    job = await batch.jobs.create(args.name, options)
    _show(args, out, job, f"created {job.id} ({job.status.overview}: {job.status.message})")


async def _jobs_cancel(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    job = await batch.jobs.cancel(args.job_id)
    _show(
        args,
        out,
        job,
        f"cancel requested for {job.id} ({job.status.overview}: {job.status.message})",
    )


async def _jobs_delete(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    result = await batch.jobs.delete(args.job_id)
    _show(args, out, result, f"deleted {result.id}")


async def _jobs_wait(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ._waiting import ProgressTracker

    tracker = ProgressTracker()
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

        def show(job: Job) -> None:
            progress = tracker.update(job)
            c = job.status.items
            bars.update(
                task,
                completed=progress.ended,
                counts=f"{job.status.message}: {c.gathered} gathered, {c.predicted} predicted, "
                f"{c.delivered} delivered",
            )

        job = await batch.jobs.wait_until_done(
            args.job_id,
            interval=args.interval,
            timeout=args.timeout,
            raise_exception_if=None,
            on_update=show,
        )
    _show(args, out, job, _job_detail(job))
    if str(job.status.overview) == "Failed":
        raise SystemExit(1)


async def _jobs_logs(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    def emit(entry: JobLogEntry) -> None:
        _show(args, out, entry, _log_line(entry), markup=False)

    if args.follow:
        async for entry in batch.jobs.follow_logs(args.job_id, min_level=args.min_level):
            emit(entry)
        return
    flt: dict[str, Any] = {"min_level": args.min_level}
    entries: list[JobLogEntry] = []
    async for entry in batch.jobs.get_all_logs(args.job_id, flt):
        entries.append(entry)
        if len(entries) >= args.max_entries:
            break
    for entry in reversed(entries):  # oldest first, like a log file
        emit(entry)


# ------------------------------------------------------------------------- datasets


async def _datasets_create(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    dataset = await batch.datasets.create(args.name, args.path)
    if args.wait:
        dataset = await batch.datasets.wait_until_done(dataset.id)
    status = dataset.status
    _show(
        args, out, dataset, f"created {dataset.id}: {status.overview} ({status.item_count} items)"
    )


def _listing(
    args: argparse.Namespace,
    out: Console,
    found: Sequence[Any],
    noun: str,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[str]],
) -> None:
    """Print `found` as JSON lines (`--json`) or as a table: its id, then `row(item)`."""
    from rich.table import Table

    if args.json:
        for item in found:
            _json_out(item)
        return
    table = Table(title=f"{len(found)} {noun}(s)", title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in columns:
        table.add_column(column)
    for item in found:
        table.add_row(item.id, *row(item))
    out.print(table)


async def _datasets_list(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    found = [d async for d in batch.datasets.iter()]
    _listing(
        args,
        out,
        found,
        "dataset",
        ("name", "overview", "items", "created"),
        lambda d: (
            _short(d.name, 24),
            str(d.status.overview),
            str(d.status.item_count),
            _when(d.create_date),
        ),
    )


async def _datasets_get(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    dataset = await batch.datasets.get(args.dataset_id)
    s = dataset.status
    _show(
        args,
        out,
        dataset,
        f"{dataset.id}  {dataset.name}  {s.overview}: {s.message}  {s.item_count} items",
    )


async def _datasets_delete(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    result = await batch.datasets.delete(args.dataset_id)
    _show(args, out, result, f"deleted {result.id}")


# ------------------------------------------------------------------------- webhooks


def _webhook_secret(path: Path) -> str:
    """The secret in `path`, or a fresh one written there (mode 0600) if it does not exist."""
    from .signing import generate_secret

    if path.exists():
        return path.read_text().strip()
    secret = generate_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


async def _webhooks_create(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    secret = _webhook_secret(Path(args.secret_file))
    spec = {
        "endpoint": args.endpoint,
        "secret": {"contents": secret},
        "retries": {"max_retries": args.max_retries, "max_retry_delay": args.max_backoff_ms},
    }
    webhook = await batch.webhooks.create(args.name, spec)
    # Shown as the plain Webhook: the secret stays in its file, never on stdout.
    public = Webhook(**{f.name: getattr(webhook, f.name) for f in attrs.fields(Webhook)})
    _show(
        args,
        out,
        public,
        f"created {webhook.id} -> {webhook.endpoint} (secret in {args.secret_file})",
    )


async def _webhooks_list(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    found = [w async for w in batch.webhooks.iter()]
    _listing(
        args,
        out,
        found,
        "webhook",
        ("name", "endpoint", "retries", "created"),
        lambda w: (
            _short(w.name, 24),
            w.endpoint,
            f"{w.retries.max_retries} (≤{w.retries.max_retry_delay} ms)",
            _when(w.create_date),
        ),
    )


async def _webhooks_get(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    webhook = await batch.webhooks.get(args.webhook_id)
    _show(args, out, webhook, f"{webhook.id}  {webhook.name}  -> {webhook.endpoint}")


async def _webhooks_delete(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    result = await batch.webhooks.delete(args.webhook_id)
    _show(args, out, result, f"deleted {result.id}")


async def _webhooks_test(args: argparse.Namespace, batch: Batch, out: Console) -> None:
    result = await batch.webhooks.test(args.webhook_id)
    text = (
        f"{result.status}: HTTP {result.response_code} in {result.latency_ms:.1f} ms "
        f"after {result.attempt_count} attempt(s)"
        + (f" ({result.reason})" if result.reason else "")
    )
    _show(args, out, result, text)


# ---------------------------------------------------------------------- serve, demo


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server import LocalNexus
    except ImportError:
        raise _Usage(
            "the local server needs the `server` extra: pip install 'nexus-async[server]'"
        ) from None

    async def run() -> None:
        async with LocalNexus(
            host=args.host,
            port=args.port,
            secret_key=args.secret_key,
            project_id=args.project_id,
            latency=args.latency,
        ) as nexus:
            print(f"Local Nexus batch server at {nexus.base_url}")
            print(f"  project id:    {nexus.project_id}")
            print(f"  deployment id: {nexus.deployment_id}")
            print("Point a client at it with:")
            print(f"  export DATATURE_API_BASE_URL={nexus.base_url}")
            print(f"  export DATATURE_PROJECT_ID={nexus.project_id}")
            print(f"  export DATATURE_SECRET_KEY={nexus.secret_key}", flush=True)
            await anyio.sleep_forever()

    anyio.run(run)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(items=args.items, jobs=args.jobs, console=_console())


# -------------------------------------------------------------------------- parsing


def _api_command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Run `handler` with a client and project built from flags or the environment."""

    def run(args: argparse.Namespace) -> int:
        from ._client import AsyncClient

        project_id = args.project_id or os.environ.get("DATATURE_PROJECT_ID")
        if not project_id:
            raise _Usage("no project: pass --project-id or set DATATURE_PROJECT_ID")
        out = _console()
        client = AsyncClient(args.secret_key, base_url=args.base_url)

        async def go() -> None:
            async with client:
                await handler(args, _batch(client, project_id), out)

        anyio.run(go)
        return 0

    return run


def _batch(client: AsyncClient, project_id: str) -> Batch:
    return client.get_project(project_id).batch


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--secret-key", help="default: $DATATURE_SECRET_KEY")
    common.add_argument("--base-url", help="default: $DATATURE_API_BASE_URL or the hosted API")
    common.add_argument("--project-id", help="default: $DATATURE_PROJECT_ID")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = argparse.ArgumentParser(
        prog="nexus-async", description="Datature Nexus batch jobs, asynchronously."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the local Nexus batch server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="default: a free port")
    serve.add_argument("--secret-key", help="default: a fresh random key")
    serve.add_argument("--project-id", help="default: a fresh project id")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="run batch jobs end to end on a local server")
    demo.add_argument("--items", type=int, default=300, help="images in all (default 300)")
    demo.add_argument("--jobs", type=int, default=3, help="jobs run at once (default 3)")
    demo.set_defaults(run=_demo)

    def group(name: str, help: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = commands.add_parser(name, help=help)
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(
        actions: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help: str,
    ) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, parents=[common])
        parser.set_defaults(run=_api_command(handler))
        return parser

    jobs = group("jobs", "batch jobs")
    p = action(jobs, "list", _jobs_list, "list jobs, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--page", help="a page cursor from a previous list")
    p.add_argument("--all", action="store_true", help="every page")
    action(jobs, "get", _jobs_get, "show one job").add_argument("job_id")
    p = action(jobs, "create", _jobs_create, "create a job")
    p.add_argument("name")
    p.add_argument("--dataset-id", required=True)
    p.add_argument("--webhook-id", required=True)
    p.add_argument("--deployment-id")
    p.add_argument("--artifact-id")
    p.add_argument("--start-at-time", type=int, help="epoch ms")
    p.add_argument("--stop-at-time", type=int, help="epoch ms")
    action(jobs, "cancel", _jobs_cancel, "cancel a job").add_argument("job_id")
    action(jobs, "delete", _jobs_delete, "delete a job").add_argument("job_id")
    p = action(jobs, "wait", _jobs_wait, "wait for a job to finish, with a progress bar")
    p.add_argument("job_id")
    p.add_argument("--interval", type=float, default=5.0, help="longest poll interval (s)")
    p.add_argument("--timeout", type=float, default=None, help="give up after (s)")
    p = action(jobs, "logs", _jobs_logs, "print a job's log, oldest first")
    p.add_argument("job_id")
    p.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    p.add_argument("--min-level", choices=["Debug", "Info", "Warning", "Error"])
    p.add_argument("--max-entries", type=int, default=1000, help="newest N (without --follow)")

    datasets = group("datasets", "datasets of items to predict on")
    p = action(datasets, "create", _datasets_create, "create and upload a dataset")
    p.add_argument("name")
    p.add_argument("path", help='an .ndjson file, one {"kind": "Image", "url": ...} per line')
    p.add_argument("--wait", action="store_true", help="wait until it is processed")
    action(datasets, "list", _datasets_list, "list datasets")
    action(datasets, "get", _datasets_get, "show one dataset").add_argument("dataset_id")
    action(datasets, "delete", _datasets_delete, "delete a dataset").add_argument("dataset_id")

    webhooks = group("webhooks", "where results are delivered")
    p = action(webhooks, "create", _webhooks_create, "create a webhook")
    p.add_argument("name")
    p.add_argument("endpoint", help="the http(s) URL deliveries are POSTed to")
    p.add_argument(
        "--secret-file",
        required=True,
        help="file holding the signing secret; created with a fresh secret if missing",
    )
    p.add_argument("--max-retries", type=int, default=3)
    p.add_argument("--max-backoff-ms", type=int, default=15000)
    action(webhooks, "list", _webhooks_list, "list webhooks")
    action(webhooks, "get", _webhooks_get, "show one webhook").add_argument("webhook_id")
    action(webhooks, "delete", _webhooks_delete, "delete a webhook").add_argument("webhook_id")
    action(webhooks, "test", _webhooks_test, "send a test delivery").add_argument("webhook_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nexus-async` command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except (_Usage, errors.ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except errors.NexusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
