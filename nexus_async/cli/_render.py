"""How results are shown: the API's JSON for scripts (`--json`), text for people.

Nothing is ever cut. On a terminal wide enough, tables are drawn with rich; without
one (a pipe, a file, CI), or when the table is wider than the terminal, they are
plain text aligned in columns as wide as their widest cell, so that every id and
count is shown in full (and `grep`, `cut` and `awk` see them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import unstructure
from ._base import Usage

if TYPE_CHECKING:
    from rich.console import Console

    from .. import JobLogEntry

__all__ = ["console", "detail", "fields", "json_out", "log_line", "show", "table", "when"]

# Wire names of epoch-millisecond times, shown as UTC text next to the number.
_TIME_KEYS = ("Time", "Date", "At")


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


def show(args: argparse.Namespace, out: Console, value: Any, text: str) -> None:
    """`value` as the API's JSON with `--json`, else the line `text` for people."""
    if args.json:
        json_out(value)
    else:
        out.print(text, markup=False)


def when(ms: int | None) -> str:
    """An epoch-millisecond time as UTC text, `-` for none."""
    if ms is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def table(
    out: Console,
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    right: Sequence[str] = (),
    header: bool = True,
) -> None:
    """Print `rows` under `columns`: rich on a terminal it fits, else plain aligned text.

    Args:
        out: Where to print.
        title: A line above the table.
        columns: Column names; `right` names the ones aligned right (numbers).
        rows: One sequence of cell texts per row.
        right: Columns aligned right.
        header: Whether to print the column names.
    """
    rows = [list(row) for row in rows]
    widths = [
        max([len(c) if header else 0, *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)
    ]
    # A drawn table takes 3 columns per cell (a border and padding) and 1 more; when
    # that does not fit the terminal, rich would squeeze cells away: print plain text.
    if out.is_terminal and sum(widths) + 3 * len(widths) + 1 <= out.width:
        from rich.table import Table

        drawn = Table(title=title, title_justify="left", show_header=header)
        for name in columns:
            drawn.add_column(name, justify="right" if name in right else "left", no_wrap=True)
        for row in rows:
            drawn.add_row(*row)
        out.print(drawn)
        return
    lines = [title]
    cells = [list(columns), *rows] if header else rows
    for row in cells:
        padded = (
            cell.rjust(width) if name in right else cell.ljust(width)
            for cell, name, width in zip(row, columns, widths, strict=True)
        )
        lines.append("  ".join(padded).rstrip())
    out.print("\n".join(lines), markup=False, soft_wrap=True)


def fields(value: Any) -> list[tuple[str, str]]:
    """A model as `(path, text)` rows from its JSON: `spec.deployment.deploymentId`."""
    rows: list[tuple[str, str]] = []

    def walk(path: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                walk(f"{path}.{key}" if path else key, item)
        elif isinstance(node, list) and any(isinstance(x, (dict, list)) for x in node):
            for index, item in enumerate(node):
                walk(f"{path}[{index}]", item)
        elif isinstance(node, list):
            rows.append((path, ", ".join(str(x) for x in node) or "-"))
        elif node is None:
            rows.append((path, "-"))
        elif isinstance(node, int) and not isinstance(node, bool) and path.endswith(_TIME_KEYS):
            rows.append((path, f"{when(node)} UTC ({node})"))
        else:
            rows.append((path, str(node)))

    walk("", unstructure(value))
    return rows


def detail(args: argparse.Namespace, out: Console, value: Any, title: str) -> None:
    """One model: its JSON with `--json`, else one `field  value` row per field."""
    if args.json:
        json_out(value)
        return
    table(out, title, ("field", "value"), fields(value), header=False)


def log_line(entry: JobLogEntry) -> str:
    """One log entry as one line of text."""
    reason = f"  {entry.reason}" if entry.reason else ""
    return (
        f"{when(entry.create_time)}  {entry.level!s:<7} {entry.kind:<16} "
        f"{entry.status:<12} {entry.item}{reason}"
    )
