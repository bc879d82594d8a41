"""`nexus-async serve`: the local Nexus batch server in the foreground, until Ctrl-C.

So that a job can be created at once (by `nexus-async jobs create`, the examples or
your own code), the server starts with a project holding a ready dataset of small
generated images and a webhook whose deliveries go to a receiver run here, which
verifies and counts them. It prints the environment a client needs, ids included,
as `export` lines to paste into another terminal.

Its flags are the local server's settings (`ServerSettings`, the options `LocalNexus`
takes), generated from that one class when `serve` is parsed, so that the other
commands never import the server.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import io
import random
import signal
from typing import TYPE_CHECKING, Any

import anyio

from ._base import Exit, Usage

if TYPE_CHECKING:
    from ..server import Predictor, ServerSettings

__all__ = ["register"]

SEEDED_ITEMS = 20


def _images(count: int) -> list[str]:
    """`count` small PNGs (a bright box on a dark ground) as data: URLs."""
    from PIL import Image, ImageDraw

    rng = random.Random(11)
    urls = []
    for _ in range(count):
        image = Image.new("L", (48, 48), rng.randint(0, 40))
        x, y = rng.randint(0, 24), rng.randint(0, 24)
        ImageDraw.Draw(image).rectangle((x, y, x + 16, y + 16), fill=rng.randint(200, 255))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls


def _load_predictor(spec: str) -> Predictor:
    """The predictor named by `module:attribute`: a predictor, or a callable making one."""
    from ..server import Predictor

    module_name, colon, attribute = spec.partition(":")
    if not (module_name and colon and attribute):
        raise Usage(f"--predictor must be module:callable (got {spec!r})")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise Usage(f"--predictor {spec}: {exc}") from None
    # A class has a `predict` attribute too, so it would pass as a predictor: make one.
    if isinstance(target, type) or not isinstance(target, Predictor):
        if not callable(target):
            raise Usage(f"--predictor {spec} is neither a predictor nor callable")
        try:
            target = target()
        except Exception as exc:
            raise Usage(f"--predictor {spec}() raised {type(exc).__name__}: {exc}") from None
        if not isinstance(target, Predictor):
            raise Usage(f"--predictor {spec}() did not return an object with predict(image)")
    return target


def _settings(args: argparse.Namespace) -> ServerSettings:
    import attrs

    from ..server import ServerSettings

    try:
        settings = ServerSettings.from_arguments(args)
        if args.predictor_spec is not None:
            predictor = _load_predictor(args.predictor_spec)
            settings = attrs.evolve(settings, predictor=predictor)
    except ValueError as exc:
        raise Usage(str(exc)) from None
    return settings


def _serve(args: argparse.Namespace) -> int:
    try:
        from .. import Delivery, DeliveryReceiver
        from ..server import LocalNexus, serve_asgi
        from ..server._persist import StateFileError
        from ..signing import generate_secret
    except ImportError:
        raise Usage(
            "the local server needs the `server` extra: pip install 'nexus-async[server]'"
        ) from None

    settings = _settings(args)
    received = 0

    async def count(delivery: Delivery) -> None:
        nonlocal received
        received += 1

    async def run() -> None:
        secret = generate_secret()
        receiver = DeliveryReceiver(secret, count)
        async with (
            LocalNexus(settings) as nexus,
            serve_asgi(receiver.app("/results")) as receiver_url,
        ):
            dataset_id = nexus.seed_dataset(_images(SEEDED_ITEMS), name="sample")
            webhook_id = nexus.seed_webhook(f"{receiver_url}/results", secret, name="sample")
            print(f"Local Nexus batch server at {nexus.base_url}")
            print(f"  project id:    {nexus.project_id}")
            print(f"  deployment id: {nexus.deployment_id}")
            print(f"  dataset id:    {dataset_id} ({SEEDED_ITEMS} images, ready)")
            print(f"  webhook id:    {webhook_id} (to a receiver here: {receiver_url}/results)")
            if settings.state_file is not None:
                print(f"  state file:    {settings.state_file}")
            if settings.static_dir is not None:
                print(f"  static files:  {settings.static_dir} at {nexus.static_url('')}")
            print("Point a client, or the examples, at it with:")
            for name, value in (
                ("DATATURE_API_BASE_URL", nexus.base_url),
                ("DATATURE_PROJECT_ID", nexus.project_id),
                ("DATATURE_SECRET_KEY", nexus.secret_key),
                ("NEXUS_DATASET_ID", dataset_id),
                ("NEXUS_WEBHOOK_ID", webhook_id),
                ("NEXUS_DEPLOYMENT_ID", nexus.deployment_id),
            ):
                print(f"  export {name}={value}")
            print("Ctrl-C (or SIGTERM) stops it.", flush=True)
            # SIGTERM ends the block normally, so the state file gets its last write.
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    break

    try:
        anyio.run(run)
    except StateFileError as exc:
        raise Usage(f"--state-file: {exc}") from None
    finally:
        print(f"stopped; the receiver verified {received} deliveries", flush=True)
    return Exit.OK


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    """The settings' flags, plus --predictor; a note instead without the server extra."""
    try:
        from ..server import ServerSettings
    except ImportError:
        return  # `_serve` explains what to install
    ServerSettings.add_arguments(parser)
    parser.add_argument(
        "--predictor",
        dest="predictor_spec",  # `predictor` itself is the settings' field, an object
        metavar="MODULE:CALLABLE",
        help="the model: a Predictor, or a callable returning one, imported from MODULE "
        "(default: the built-in foreground box predictor)",
    )


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the `serve` command; its flags are added when it is the command parsed."""
    serve: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="run the local Nexus batch server",
        description="Run the local Nexus batch server, with a ready dataset and webhook, "
        "and print the environment a client needs. Every option of LocalNexus is a flag.",
    )
    serve.set_defaults(run=_serve)
    parse = serve.parse_known_args
    added = False

    def parse_with_flags(
        args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        nonlocal added
        if not added:
            added = True
            _add_server_flags(serve)
        return parse(args, namespace)

    # Only when `serve` is parsed (argparse hands a chosen subcommand's arguments to its
    # parser's parse_known_args): importing the server costs every other command time.
    serve.parse_known_args = parse_with_flags  # type: ignore[method-assign,assignment]
