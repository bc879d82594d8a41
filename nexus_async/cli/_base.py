"""What every command shares: exit statuses, the usage error, the handler type."""

from __future__ import annotations

import argparse
import enum
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from .. import Batch

__all__ = ["Actions", "Exit", "Handler", "Usage", "positive"]


class Exit(enum.IntEnum):
    """The command's exit statuses, one per kind of outcome (see `--help`)."""

    OK = 0
    API_ERROR = 1
    USAGE = 2
    JOB_FAILED = 3
    TIMED_OUT = 4
    ALREADY_FINISHED = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it


class Usage(Exception):
    """A mistake on the command line, reported as one line with exit status 2."""


# An API command: the parsed flags, the project's batch API and the stdout console in;
# the exit status out.
Handler = Callable[[argparse.Namespace, "Batch", "Console"], Awaitable[int]]

# Adds one action to a command group: `action(name, handler, help)` -> its parser.
Actions = Callable[[str, Handler, str], argparse.ArgumentParser]


def positive(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value
