"""The listing commands (`jobs list`, `datasets list`, `webhooks list`): every item by
default, page by page; with `--limit`, the cursor of the rest on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._base import Exit, positive
from ._render import json_out, table

if TYPE_CHECKING:
    from rich.console import Console

    from .. import PaginationResponse

__all__ = ["add_flags", "listing"]

PAGE = 1000  # the API's largest page

Fetch = Callable[[dict[str, Any]], Awaitable["PaginationResponse[Any]"]]


def add_flags(parser: argparse.ArgumentParser) -> None:
    """`--limit` and `--page`, shared by every listing command."""
    parser.add_argument(
        "--limit",
        type=positive,
        metavar="N",
        help="at most N, newest first; the cursor of the rest goes to stderr (default: all)",
    )
    parser.add_argument("--page", metavar="CURSOR", help="start at a cursor a listing printed")


async def listing(
    args: argparse.Namespace,
    out: Console,
    fetch: Fetch,
    noun: str,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[str]],
    right: Sequence[str] = (),
) -> int:
    """Page through `fetch` (a collection's `list`) and print what it finds.

    With `--json`, items are printed as JSON lines as each page arrives (constant
    memory); otherwise as one table of the item's id, then `row(item)`. When
    `--limit` stopped the listing early, the command for the next page is printed on
    stderr, so stdout stays valid NDJSON.
    """
    found: list[Any] = []
    cursor: str | None = args.page
    count = 0
    while True:
        want = PAGE if args.limit is None else min(PAGE, args.limit - count)
        page = await fetch({"limit": want, "page": cursor})
        for item in page.data:
            if args.json:
                json_out(item)
            else:
                found.append(item)
        count += len(page.data)
        cursor = page.next_page
        if cursor is None or not page.data or (args.limit is not None and count >= args.limit):
            break
    if not args.json:
        rows = ([item.id, *row(item)] for item in found)
        table(out, f"{count} {noun}(s)", ("id", *columns), rows, right=right)
    if cursor is not None:
        print(
            f"more {noun}s: nexus-async {args.command} list --limit {args.limit} --page {cursor}",
            file=sys.stderr,
        )
    return Exit.OK
