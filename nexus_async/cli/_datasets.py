"""`nexus-async datasets ...`: create (upload), list, get and delete datasets."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._base import Actions, Exit
from ._listing import add_flags, listing
from ._render import detail, show, when

if TYPE_CHECKING:
    from rich.console import Console

    from .. import Batch

__all__ = ["register"]


async def _create(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    dataset = await batch.datasets.create(args.name, args.path)
    if args.wait:
        dataset = await batch.datasets.wait_until_done(dataset.id)
    status = dataset.status
    text = f"created {dataset.id}: {status.overview} ({status.item_count} items)"
    show(args, out, dataset, text)
    return Exit.OK


async def _list(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    return await listing(
        args,
        out,
        batch.datasets.list,
        "dataset",
        ("name", "overview", "items", "created"),
        lambda d: (d.name, str(d.status.overview), str(d.status.item_count), when(d.create_date)),
        right=("items",),
    )


async def _get(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    dataset = await batch.datasets.get(args.dataset_id)
    detail(args, out, dataset, dataset.id)
    return Exit.OK


async def _delete(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    result = await batch.datasets.delete(args.dataset_id)
    show(args, out, result, f"deleted {result.id}")
    return Exit.OK


def register(action: Actions) -> None:
    """Add the `datasets` actions through `action(name, handler, help)`."""
    p = action("create", _create, "create and upload a dataset")
    p.add_argument("name")
    p.add_argument("path", help='an .ndjson file, one {"kind": "Image", "url": ...} per line')
    p.add_argument("--wait", action="store_true", help="wait until it is processed")
    add_flags(action("list", _list, "list datasets, newest first"))
    action("get", _get, "show one dataset").add_argument("dataset_id")
    action("delete", _delete, "delete a dataset").add_argument("dataset_id")
