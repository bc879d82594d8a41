"""The command line itself: flags, the client each API command runs with, exit statuses.

The key, URL and project come from `--secret-key`/`--base-url`/`--project-id` or
`DATATURE_SECRET_KEY`/`DATATURE_API_BASE_URL`/`DATATURE_PROJECT_ID`. Handlers return
their exit status; errors become one line on stderr and a status here, in `main`.
Ctrl-C exits 130 without a traceback. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import anyio

from .. import errors
from . import _datasets, _demo, _jobs, _serve, _webhooks
from ._base import Exit, Handler, Usage
from ._render import console

__all__ = ["Actions", "main"]

# Adds one action to a command group: `action(name, handler, help)` -> its parser.
Actions = Callable[[str, Handler, str], argparse.ArgumentParser]


def _api_command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """Run `handler` with a client and project built from flags or the environment."""

    def run(args: argparse.Namespace) -> int:
        from .. import AsyncClient

        project_id = args.project_id or os.environ.get("DATATURE_PROJECT_ID")
        if not project_id:
            raise Usage("no project: pass --project-id or set DATATURE_PROJECT_ID")
        out = console()
        client = AsyncClient(args.secret_key, base_url=args.base_url)

        async def go() -> int:
            async with client:
                return await handler(args, client.get_project(project_id).batch, out)

        code: int = anyio.run(go)
        return code

    return run


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--secret-key", help="default: $DATATURE_SECRET_KEY")
    common.add_argument("--base-url", help="default: $DATATURE_API_BASE_URL or the hosted API")
    common.add_argument("--project-id", help="default: $DATATURE_PROJECT_ID")
    common.add_argument(
        "--json", action="store_true", help="print the API's JSON, one object per line"
    )

    parser = argparse.ArgumentParser(
        prog="nexus-async", description="Datature Nexus batch jobs, asynchronously."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serve.register(commands)
    _demo.register(commands)

    for name, help, module in (
        ("jobs", "batch jobs", _jobs),
        ("datasets", "datasets of items to predict on", _datasets),
        ("webhooks", "where results are delivered", _webhooks),
    ):
        group = commands.add_parser(name, help=help)
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

        def action(
            name: str,
            handler: Handler,
            help: str,
            actions: argparse._SubParsersAction[argparse.ArgumentParser] = actions,
        ) -> argparse.ArgumentParser:
            parser = actions.add_parser(name, help=help, parents=[common])
            parser.set_defaults(run=_api_command(handler))
            return parser

        module.register(action)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nexus-async` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else Exit.USAGE
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except (Usage, errors.ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    except errors.NexusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.API_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.API_ERROR
