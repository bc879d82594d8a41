"""How results are shown: the API's JSON for scripts (`--json`), rich text for people."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._convert import unstructure
from ._base import Usage

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..models import Job, JobLogEntry

__all__ = [
    "console",
    "job_detail",
    "jobs_table",
    "json_out",
    "listing",
    "log_line",
    "short",
    "show",
    "when",
]


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); a usage error if rich is not installed."""
    try:
        from rich.console import Console
    except ImportError:
        raise Usage("this command needs the `cli` extra: pip install 'nexus-async[cli]'") from None
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def json_out(data: Any) -> None:
    """Write `data` as the API's JSON, one compact line."""
    sys.stdout.write(json.dumps(unstructure(data), separators=(",", ":")) + "\n")
    sys.stdout.flush()


def show(args: argparse.Namespace, out: Console, value: Any, text: Any, **options: Any) -> None:
    """`value` as the API's JSON with `--json`, else `text` for people."""
    if args.json:
        json_out(value)
    else:
        out.print(text, **options)


def when(ms: int | None) -> str:
    """An epoch-millisecond time as UTC text, `-` for none."""
    if ms is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def short(text: str, width: int = 48) -> str:
    """`text` cut to `width` characters, with an ellipsis where it was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(title: str, columns: Sequence[str], right: Sequence[str] = ()) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(
            column, justify="right" if column in right else "left", no_wrap=column == "id"
        )
    return table


def jobs_table(jobs: Sequence[Job], title: str) -> Table:
    """One row per job: id, name, status, counters, creation time."""
    table = _table(
        title,
        ("id", "name", "overview", "message", "delivered", "failed", "created"),
        right=("delivered", "failed"),
    )
    for job in jobs:
        c = job.status.items
        table.add_row(
            job.id,
            short(job.name, 24),
            str(job.status.overview),
            job.status.message,
            str(c.delivered),
            str(c.failed),
            when(job.create_date),
        )
    return table


def job_detail(job: Job) -> Table:
    """Every field of one job, one per row."""
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
        ("start at", when(job.spec.start_at_time)),
        ("stop at", when(job.spec.stop_at_time)),
        ("cancelled at", when(status.cancelled_at)),
        ("created", when(job.create_date)),
        ("updated", when(job.update_date)),
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


def log_line(entry: JobLogEntry) -> str:
    """One log entry as one line of text."""
    reason = f"  {entry.reason}" if entry.reason else ""
    return (
        f"{when(entry.create_time)}  {entry.level!s:<7} {entry.kind:<16} "
        f"{entry.status:<12} {entry.item}{reason}"
    )


def listing(
    args: argparse.Namespace,
    out: Console,
    found: Sequence[Any],
    noun: str,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[str]],
) -> None:
    """Print `found` as JSON lines (`--json`) or as a table: its id, then `row(item)`."""
    if args.json:
        for item in found:
            json_out(item)
        return
    table = _table(f"{len(found)} {noun}(s)", ("id", *columns))
    for item in found:
        table.add_row(item.id, *row(item))
    out.print(table)
