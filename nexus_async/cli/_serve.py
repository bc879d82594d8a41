"""`nexus-async serve`: the local Nexus batch server in the foreground, until Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from ._base import Exit, Usage

__all__ = ["register"]


def _serve(args: argparse.Namespace) -> int:
    try:
        from ..server import LocalNexus
    except ImportError:
        raise Usage(
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
    return Exit.OK


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the `serve` command."""
    serve = commands.add_parser("serve", help="run the local Nexus batch server")
    serve.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    serve.add_argument("--port", type=int, default=0, help="default: a free port")
    serve.add_argument("--secret-key", help="default: a fresh random key")
    serve.add_argument("--project-id", help="default: a fresh project id")
    serve.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to answers (default: 0)"
    )
    serve.set_defaults(run=_serve)
