"""What the command says on stderr: errors and warnings, one line each, in the user's terms.

Every failure maps to one exit status (`Exit`) and one line naming flags, not Python
parameters (`--deployment-id`, not `deployment_id`). An answer that is not the Nexus
API's JSON (a proxy's or another server's HTML page) is summarized by its status and
content type instead of being printed. The SDK's own WARNING records (for example
during long stretches of connection failures) are shown the same way.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .. import errors
from ._base import Exit, Usage

__all__ = ["describe", "one_line", "warnings_on_stderr"]

_NAME = re.compile(r"`([a-z][a-z0-9_]*)`")
_SPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    """`text` with every run of whitespace, newlines included, as one space."""
    return _SPACE.sub(" ", text).strip()


def _in_flags(message: str, flags: Mapping[str, str]) -> str:
    """Replace `` `dest` `` with the flag that sets it, where there is one."""
    return _NAME.sub(lambda m: flags.get(m.group(1), m.group(0)), message)


def _not_the_api(exc: errors.APIStatusError) -> str | None:
    """A short description of an error answer that is not JSON, else None."""
    response = exc.response
    if response is None:
        return None
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if not kind or kind.endswith("json"):
        return None
    return (
        f"HTTP {exc.status} from {exc.method} {exc.url}, answered with {kind} instead of "
        "the Nexus API's JSON: is --base-url (or DATATURE_API_BASE_URL) right?"
    )


def describe(exc: BaseException, flags: Mapping[str, str]) -> tuple[int, str]:
    """The exit status and the one-line message for a command that raised `exc`."""
    status: int = Exit.API_ERROR
    text = str(exc)
    if isinstance(exc, (Usage, errors.ValidationError)):
        status = Exit.USAGE
    elif isinstance(exc, (errors.JobStateError, errors.DatasetFailedError)):
        status = Exit.JOB_FAILED
    elif isinstance(exc, errors.WaitTimeoutError):
        status = Exit.TIMED_OUT
    elif isinstance(exc, errors.APIStatusError):
        text = _not_the_api(exc) or text
    return status, "error: " + one_line(_in_flags(text, flags))


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        return one_line(text)


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """Show the SDK's WARNING and worse records on stderr, one line each, for the block.

    A record another handler of the logger already writes to stderr (`NEXUS_LOG`'s,
    installed when the first client is made) is left to that one: shown once.
    """
    logger = logging.getLogger("nexus_async")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_OneLine())

    def not_shown_elsewhere(record: logging.LogRecord) -> bool:
        return not any(
            other is not handler
            and isinstance(other, logging.StreamHandler)
            and other.stream is sys.stderr
            and record.levelno >= other.level
            for other in logger.handlers
        )

    handler.addFilter(not_shown_elsewhere)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
