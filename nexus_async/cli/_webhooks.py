"""`nexus-async webhooks ...`: create, list, get, delete and test webhooks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .. import Webhook
from ._base import Actions, Exit
from ._listing import add_flags, listing
from ._render import detail, show, when

if TYPE_CHECKING:
    from rich.console import Console

    from .. import Batch

__all__ = ["register"]


def _secret(path: Path) -> str:
    """The secret in `path`, or a fresh one written there (mode 0600) if it does not exist."""
    from ..signing import generate_secret

    if path.exists():
        return path.read_text().strip()
    secret = generate_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


async def _create(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    secret = _secret(Path(args.secret_file))
    spec = {
        "endpoint": args.endpoint,
        "secret": {"contents": secret},
        "retries": {"max_retries": args.max_retries, "max_retry_delay": args.max_backoff_ms},
    }
    webhook = await batch.webhooks.create(args.name, spec)
    # Shown as the plain Webhook: the secret stays in its file, never on stdout.
    public = Webhook(**{f.name: getattr(webhook, f.name) for f in attrs.fields(Webhook)})
    text = f"created {webhook.id} -> {webhook.endpoint} (secret in {args.secret_file})"
    show(args, out, public, text)
    return Exit.OK


async def _list(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    return await listing(
        args,
        out,
        batch.webhooks.list,
        "webhook",
        ("name", "endpoint", "retries", "created"),
        lambda w: (
            w.name,
            w.endpoint,
            f"{w.retries.max_retries} (≤{w.retries.max_retry_delay} ms)",
            when(w.create_date),
        ),
    )


async def _get(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    webhook = await batch.webhooks.get(args.webhook_id)
    detail(args, out, webhook, webhook.id)
    return Exit.OK


async def _delete(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    result = await batch.webhooks.delete(args.webhook_id)
    show(args, out, result, f"deleted {result.id}")
    return Exit.OK


async def _test(args: argparse.Namespace, batch: Batch, out: Console) -> int:
    result = await batch.webhooks.test(args.webhook_id)
    text = (
        f"{result.status}: HTTP {result.response_code} in {result.latency_ms:.1f} ms "
        f"after {result.attempt_count} attempt(s)"
        + (f" ({result.reason})" if result.reason else "")
    )
    show(args, out, result, text)
    return Exit.OK


def register(action: Actions) -> None:
    """Add the `webhooks` actions through `action(name, handler, help)`."""
    p = action("create", _create, "create a webhook")
    p.add_argument("name")
    p.add_argument("endpoint", help="the http(s) URL deliveries are POSTed to")
    p.add_argument(
        "--secret-file",
        required=True,
        help="file holding the signing secret; created with a fresh secret if missing",
    )
    p.add_argument(
        "--max-retries", type=int, default=3, help="retries per delivery (default: %(default)s)"
    )
    p.add_argument(
        "--max-backoff-ms",
        type=int,
        default=15000,
        help="longest wait between retries, in ms (default: %(default)s)",
    )
    add_flags(action("list", _list, "list webhooks, newest first"))
    action("get", _get, "show one webhook").add_argument("webhook_id")
    action("delete", _delete, "delete a webhook").add_argument("webhook_id")
    action("test", _test, "send a test delivery").add_argument("webhook_id")
