"""The `nexus-async` command.

Heavy pieces (the server, rich) are imported inside the subcommand that needs
them, so `import nexus_async` and `nexus-async --help` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    try:
        from nexus_async.server import LocalNexus
    except ImportError:
        print("the local server needs the `server` extra: pip install 'nexus-async[server]'")
        return 2

    async def run() -> None:
        async with LocalNexus(
            host=args.host,
            port=args.port,
            secret_key=args.secret_key,
            project_id=args.project_id,
            latency=args.latency,
        ) as nexus:
            print(f"Local Nexus batch server at {nexus.base_url}", flush=True)
            print(f"  project id:    {nexus.project_id}")
            print(f"  secret key:    {nexus.secret_key}")
            print(f"  deployment id: {nexus.deployment_id}")
            print("Point a client at it with:")
            print(f"  export DATATURE_API_BASE_URL={nexus.base_url}")
            print(f"  export DATATURE_SECRET_KEY={nexus.secret_key}", flush=True)
            await anyio.sleep_forever()

    try:
        anyio.run(run)
    except KeyboardInterrupt:
        pass
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexus-async", description="Datature Nexus batch jobs, asynchronously."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local Nexus batch server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--secret-key", default=None, help="default: a fresh random key")
    serve.add_argument("--project-id", default=None, help="default: a fresh project id")
    serve.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every API answer"
    )
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nexus-async` command."""
    args = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
