"""ServerSettings: every option of the local Nexus, written once.

``NexusCore``, ``LocalNexus``, ``create_app`` and the ``nexus-async serve`` command all
take their options from this one frozen class: the Python constructors accept
``settings=`` plus keyword overrides of its fields (checked against the fields, applied
with ``attrs.evolve``), and the command line's flags are generated from the fields'
metadata by ``ServerSettings.add_arguments`` / ``from_arguments``. A bad value raises
``ValueError`` naming the option.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ._predictor import Predictor
from ._state import check_project_id, check_secret_key

__all__ = ["ServerSettings", "resolve_settings"]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        bounds = f">= {minimum}" if maximum is None else f"within {minimum}..{maximum}"
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < minimum
            or (maximum is not None and value > maximum)
        ):
            raise ValueError(f"`{attribute.name}` must be an integer {bounds} (got {_show(value)})")

    return check


def _seconds(*, positive: bool) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            raise ValueError(
                f"`{attribute.name}` must be a finite number of seconds {bound}"
                f" (got {_show(value)})"
            )

    return check


def _problem(check: Callable[[str], str | None]) -> Callable[[Any, Any, Any], None]:
    def run(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        problem = check(value) if isinstance(value, str) else "must be a string"
        if problem is not None:
            raise ValueError(f"`{attribute.name}` {problem} (got {_show(value)})")

    return run


def _boolean(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{attribute.name}` must be True or False (got {_show(value)})")


def _string(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{attribute.name}` must be a non-empty string (got {_show(value)})")


def _to_dir(value: Any) -> Any:
    return Path(value).resolve() if isinstance(value, (str, os.PathLike)) else value


def _directory(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, Path) and value.is_dir()):
        raise ValueError(f"`{attribute.name}` must be an existing directory (got {_show(value)})")


def _predictor(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Predictor):
        raise ValueError(
            f"`{attribute.name}` must have a predict(image) method (got {_show(value)})"
        )


def _clock_kind(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("real", "manual"):
        raise ValueError(f"`{attribute.name}` must be 'real' or 'manual' (got {_show(value)})")


def _to_path(value: Any) -> Any:
    return Path(value) if isinstance(value, (str, os.PathLike)) else value


def _state_file(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, Path) and value.parent.is_dir()):
        raise ValueError(
            f"`{attribute.name}` must be a file in an existing directory (got {_show(value)})"
        )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _to_hosts(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(str(host).lower() if isinstance(host, str) else host for host in value)
    return value


def _hosts(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (
        isinstance(value, tuple) and all(isinstance(h, str) and h.strip() for h in value)
    ):
        raise ValueError(
            f"`{attribute.name}` must be None or a sequence of host names (got {_show(value)})"
        )


def _flag(help: str, parse: Callable[[str], Any] | None = str) -> dict[str, Any]:
    """Field metadata: the command line's help, and how to parse a flag's text (None:
    not on the command line; ``bool``: a ``--x/--no-x`` pair)."""
    return {"help": help, "parse": parse}


@attrs.frozen(kw_only=True)
class ServerSettings:
    """The options of a local Nexus; every field has a default.

    Attributes:
        host: interface ``LocalNexus`` and ``serve`` listen on (default loopback).
        port: TCP port; 0 (default) picks a free one.
        secret_key: key of the first project; random when None.
        project_id: id of the first project (``proj_...``); ``proj_<32 hex>`` when None.
        predictor: the model every deployment runs; ``ForegroundPredictor`` when None.
        static_dir: a folder served without auth under ``{base_url}/static/``.
        latency: seconds added before every API answer (not static files or admin calls).
        job_concurrency: how many jobs move items at once; the others wait their turn.
        item_concurrency: how many items of one job are in flight at once.
        delivery_timeout: seconds for one webhook POST attempt.
        gather_timeout: seconds to fetch one item.
        max_item_bytes: largest item the gather stage accepts.
        max_body_bytes: largest JSON request body (413 above).
        max_upload_bytes: largest dataset file (413 at dataset creation above).
        max_image_pixels: largest image (width x height) the pipeline decodes; larger
            ones fail preprocessing before their pixels are allocated. The default, 4K
            UHD (about 25 MB decoded), is plenty for the default predictor, which
            thumbnails to 512 pixels anyway; raise it for a predictor that needs more.
        allow_private_addresses: whether item URLs and webhook endpoints may be loopback,
            link-local, private or other non-public addresses. On (the default) for local
            development, where receivers and item servers run on this machine; turn it off
            for a server other people can reach, so that nobody uses it to probe the
            network behind it (the host is resolved, checked and pinned before connecting).
        allowed_hosts: when set, the only hosts (names or addresses, compared without
            case) item URLs and webhook endpoints may name; any other is refused before
            any DNS lookup or connection. For sandboxes: a fuzzed server that may reach
            nothing but ``("127.0.0.1",)``.
        body_timeout: seconds a request body may take to arrive, plus one second per
            MiB of its ``Content-Length``; a body still arriving then is answered 408
            (an upload becomes ``FailedUpload``, so a retry can start at once).
        state_file: a SQLite file holding projects, datasets, webhooks, jobs and logs,
            written every half second and at shutdown and read back at start, so the
            server survives a restart (jobs that were running end ``Failed``). None
            (the default): memory only.
        clock: ``"real"`` (the default) or ``"manual"``: the server's time (timestamps,
            start and stop times, retry backoff, stage durations) then stands still
            except when ``await nexus.advance(seconds)`` moves it; not a flag of
            ``serve``, which has no way to move it.
    """

    host: str = attrs.field(
        default="127.0.0.1", validator=_string, metadata=_flag("interface to listen on")
    )
    port: int = attrs.field(
        default=0, validator=_integer(0, 65535), metadata=_flag("TCP port (0: a free one)", int)
    )
    secret_key: str | None = attrs.field(
        default=None,
        repr=False,
        validator=_problem(check_secret_key),
        metadata=_flag("key of the first project (default: a fresh random key)"),
    )
    project_id: str | None = attrs.field(
        default=None,
        validator=_problem(check_project_id),
        metadata=_flag("id of the first project (default: a fresh id)"),
    )
    predictor: Predictor | None = attrs.field(
        default=None, validator=_predictor, metadata=_flag("the model", None)
    )
    static_dir: Path | None = attrs.field(
        default=None,
        converter=_to_dir,
        validator=_directory,
        metadata=_flag("folder served under /static/", Path),
    )
    latency: float = attrs.field(
        default=0.0,
        validator=_seconds(positive=False),
        metadata=_flag("seconds added to API answers", float),
    )
    job_concurrency: int = attrs.field(
        default=8, validator=_integer(1), metadata=_flag("jobs moving items at once", int)
    )
    item_concurrency: int = attrs.field(
        default=16, validator=_integer(1), metadata=_flag("items of one job in flight", int)
    )
    delivery_timeout: float = attrs.field(
        default=10.0,
        validator=_seconds(positive=True),
        metadata=_flag("seconds for one webhook POST attempt", float),
    )
    gather_timeout: float = attrs.field(
        default=10.0,
        validator=_seconds(positive=True),
        metadata=_flag("seconds to fetch one item", float),
    )
    max_item_bytes: int = attrs.field(
        default=20 * 1024 * 1024,
        validator=_integer(1),
        metadata=_flag("largest item fetched, in bytes", int),
    )
    max_body_bytes: int = attrs.field(
        default=1024 * 1024,
        validator=_integer(1),
        metadata=_flag("largest JSON request body, in bytes", int),
    )
    max_upload_bytes: int = attrs.field(
        default=256 * 1024 * 1024,
        validator=_integer(1),
        metadata=_flag("largest dataset file, in bytes", int),
    )
    max_image_pixels: int = attrs.field(
        default=3840 * 2160,
        validator=_integer(1),
        metadata=_flag("largest decoded image, in pixels", int),
    )
    allow_private_addresses: bool = attrs.field(
        default=True,
        validator=_boolean,
        metadata=_flag("let jobs and webhook tests reach loopback and private addresses", bool),
    )
    allowed_hosts: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_to_hosts,
        validator=_hosts,
        metadata=_flag("comma-separated hosts jobs and webhook tests may reach", _split),
    )
    body_timeout: float = attrs.field(
        default=30.0,
        validator=_seconds(positive=True),
        metadata=_flag("seconds a request body may take, plus 1 s per MiB declared", float),
    )
    state_file: Path | None = attrs.field(
        default=None,
        converter=_to_path,
        validator=_state_file,
        metadata=_flag("SQLite file the state is kept in, across restarts", Path),
    )
    clock: str = attrs.field(
        default="real", validator=_clock_kind, metadata=_flag("the server's clock", None)
    )

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add one ``--flag`` per option a command line can express (all but ``predictor``).

        Flags left out parse as None, which ``from_arguments`` reads as "the default".
        """
        for field in attrs.fields(ServerSettings):
            parse = field.metadata["parse"]
            if parse is None:
                continue
            flag = "--" + field.name.replace("_", "-")
            shown = "none" if field.default is None else field.default
            text = field.metadata["help"]
            if "default:" not in text:  # a help that says its own default keeps it
                text += f" (default: {shown})"
            if parse is bool:
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
            else:
                parser.add_argument(flag, type=parse, help=text)

    @classmethod
    def from_arguments(cls, namespace: argparse.Namespace) -> ServerSettings:
        """The settings of a namespace parsed with ``add_arguments``.

        Raises:
            ValueError: a value is out of range, naming the option.
        """
        given = {
            field.name: getattr(namespace, field.name)
            for field in attrs.fields(cls)
            if getattr(namespace, field.name, None) is not None
        }
        return cls(**given)


_FIELDS = {field.name: field for field in attrs.fields(ServerSettings)}


def resolve_settings(
    settings: ServerSettings | None, overrides: Mapping[str, Any]
) -> ServerSettings:
    """``settings`` (default: all defaults) with the keyword ``overrides`` applied.

    Raises:
        TypeError: an override is not a field of ``ServerSettings``, or ``settings`` is
            not a ``ServerSettings``.
        ValueError: a value is out of range, naming the option.
    """
    base = ServerSettings() if settings is None else settings
    if not isinstance(base, ServerSettings):
        raise TypeError(f"`settings` must be a ServerSettings (got {_show(base)})")
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise TypeError(
            f"unknown server option(s) {', '.join(unknown)}; the options are {', '.join(_FIELDS)}"
        )
    return attrs.evolve(base, **overrides) if overrides else base
