"""The command line itself: flags, the client each API command runs with, exit statuses.

The key, URL and project come from `--secret-key`/`--base-url`/`--project-id` or
`DATATURE_SECRET_KEY`/`DATATURE_API_BASE_URL`/`DATATURE_PROJECT_ID`. Handlers return
their exit status; errors become one line on stderr and a status here, in `main`
(the statuses are listed in `EPILOG`, shown by `--help`). Secrets are never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .. import __version__, errors
from . import _datasets, _demo, _jobs, _serve, _webhooks
from ._base import Exit, Handler, Usage
from ._render import console
from ._report import describe, warnings_on_stderr

__all__ = ["main"]


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


EPILOG = """\
exit status:
  0    done
  1    API or network error (including an answer that is not the Nexus API's)
  2    usage: a bad flag or argument, or missing configuration
  3    the job (or dataset) ended Failed
  4    timed out (jobs wait --timeout)
  5    nothing to do: the job had already finished (jobs cancel)
  130  interrupted (Ctrl-C)
  141  stdout was closed early (for example piped into `head`); nothing more is said

Warnings of the SDK (for example while the API cannot be reached) go to stderr, one
line each. Errors are one line on stderr, naming the flag at fault.
"""


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` that remembers the flag setting each attribute, for messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: dict[str, str] = {}  # set first: the constructor adds --help
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        if action.option_strings:
            self.flags[action.dest] = max(action.option_strings, key=len)
        return action


def _parser() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--secret-key", help="default: $DATATURE_SECRET_KEY")
    common.add_argument("--base-url", help="default: $DATATURE_API_BASE_URL or the hosted API")
    common.add_argument("--project-id", help="default: $DATATURE_PROJECT_ID")
    common.add_argument(
        "--json", action="store_true", help="print the API's JSON, one object per line"
    )

    parser = _Parser(
        prog="nexus-async",
        description="Datature Nexus batch jobs, asynchronously.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nexus-async {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _serve.register(commands)
    _demo.register(commands)

    for name, help, module in (
        ("jobs", "batch jobs", _jobs),
        ("datasets", "datasets of items to predict on", _datasets),
        ("webhooks", "where results are delivered", _webhooks),
    ):
        group = commands.add_parser(name, help=help)
        actions = group.add_subparsers(
            dest="action", required=True, metavar="ACTION", parser_class=_Parser
        )

        def action(
            name: str,
            handler: Handler,
            help: str,
            actions: argparse._SubParsersAction[_Parser] = actions,
        ) -> argparse.ArgumentParser:
            parser = actions.add_parser(
                name,
                help=help,
                parents=[common],
                epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            parser.flags.update(common.flags)
            parser.set_defaults(run=_api_command(handler), flags=parser.flags)
            return parser

        module.register(action)
    return parser


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nexus-async` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else Exit.USAGE
    try:
        with warnings_on_stderr():
            code: int = args.run(args)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return Exit.BROKEN_PIPE
    except (Usage, errors.NexusError, OSError) as exc:
        status, message = describe(exc, getattr(args, "flags", {}))
        print(message, file=sys.stderr)
        return status
