"""The fault matrix: what every SDK call does under every fault, as data.

Each cell is `once/always`: the outcome when the fault hits only the call's first
matching request, and when it hits every one. A single code means both. Codes:

    ok  the call succeeded (after retries where the fault was transient)
    C   NexusConnectionError        T   RequestTimeoutError
    S   ServerError                 R   RateLimitedError
    D   ResponseDecodeError         W   WaitTimeoutError
    -   not applicable: the answer has no enum-like field to corrupt, or (the
        upload) no JSON body at all

`test_fault_matrix.py` runs one case per cell against the local server; run this
module (`python -m tests.reliability.fault_matrix`) to rewrite FAULT_MATRIX.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nexus_async import errors

OUTCOMES: dict[str, type[errors.NexusError] | None] = {
    "ok": None,
    "C": errors.NexusConnectionError,
    "T": errors.RequestTimeoutError,
    "S": errors.ServerError,
    "R": errors.RateLimitedError,
    "D": errors.ResponseDecodeError,
    "W": errors.WaitTimeoutError,
    # A 503 says the attempt was not carried out, so the retry's 404 is believed even
    # when (as this matrix's 503 does, after handling) the server had deleted it.
    "N": errors.NotFoundError,
}

FAULTS: dict[str, str] = {
    "refused": "connection refused: the request goes to a loopback port nobody listens on",
    "dropped": "the server closes the connection without answering (after handling a "
    "POST/PUT/PATCH/DELETE, so it took effect)",
    "cut": "the connection breaks mid-body: headers and half the body arrive",
    "timeout": "the server answers after the client's read timeout (0.5 s here)",
    "500": "500 (after handling a POST/PUT/PATCH/DELETE)",
    "502": "502 (likewise)",
    "503": "503 (likewise)",
    "504": "504 (likewise)",
    "429+RA": "429 with `Retry-After: 0.05`",
    "429": "429 without `Retry-After`",
    "not-json": "a 2xx whose body is an HTML page",
    "truncated": "a 2xx whose JSON is cut in half",
    "wrong-shape": 'a 2xx of valid JSON in another shape (`{"id": 12345, "data": null, ...}`)',
    "unknown-keys": "a 2xx with an unknown field added to every object",
    "unknown-enum": "a 2xx whose `overview`, `level`, `kind` and string `status` values "
    "are ones the SDK has never heard of",
}

# Faults made by the local server itself (`inject_fault`), over real HTTP; the others
# by `support.FaultProxy`, which forwards to the server and misbehaves in between.
SERVER_FAULTS = frozenset({"dropped", "timeout", "500", "502", "503", "504", "429+RA", "429"})

TRANSPORT_TABLE = """
call                  refused dropped cut   timeout 500   502   503   504   429+RA 429
jobs.create           ok/C    ok      ok    T       ok    ok    S     ok    R      R
jobs.list             ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
jobs.get              ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
jobs.cancel           ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
jobs.delete           ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  N/S   ok/S  ok/R   ok/R
jobs.get_logs         ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
jobs.get_all_logs     ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
jobs.wait_until_done  ok/W    ok/W    ok/W  ok/T    ok/W  ok/W  ok/W  ok/W  ok/W   ok/W
datasets.create       ok/C    ok      ok    T       ok    ok    S     ok    R      R
datasets.upload       ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
datasets.get          ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
datasets.list         ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
webhooks.create       ok/C    ok      ok    T       ok    ok    S     ok    R      R
webhooks.get          ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
webhooks.list         ok/C    ok/C    ok/C  ok/T    ok/S  ok/S  ok/S  ok/S  ok/R   ok/R
webhooks.test         ok/C    C       C     T       S     S     S     S     R      R
"""

BODY_TABLE = """
call                  not-json truncated wrong-shape unknown-keys unknown-enum
jobs.create           ok       ok        ok          ok           ok
jobs.list             D        D         D           ok           ok
jobs.get              D        D         D           ok           ok
jobs.cancel           D        D         D           ok           ok
jobs.delete           D        D         D           ok           -
jobs.get_logs         D        D         D           ok           ok
jobs.get_all_logs     D        D         D           ok           ok
jobs.wait_until_done  D        D         D           ok           ok/W
datasets.create       ok       ok        ok          ok           ok
datasets.upload       ok       -         ok          -            -
datasets.get          D        D         D           ok           ok
datasets.list         D        D         D           ok           ok
webhooks.create       ok       ok        ok          ok           -
webhooks.get          D        D         D           ok           -
webhooks.list         D        D         D           ok           -
webhooks.test         D        D         D           ok           ok
"""


def _parse(table: str) -> dict[tuple[str, str], tuple[str, str] | None]:
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    cells: dict[tuple[str, str], tuple[str, str] | None] = {}
    for call, *codes in rows:
        assert len(codes) == len(header), f"row {call} has {len(codes)} cells"
        for fault, code in zip(header, codes, strict=True):
            if code == "-":
                cells[call, fault] = None
                continue
            once, _, always = code.partition("/")
            always = always or once
            assert once in OUTCOMES, f"bad code {code!r} in row {call}"
            assert always in OUTCOMES, f"bad code {code!r} in row {call}"
            cells[call, fault] = (once, always)
    return cells


EXPECTED: dict[tuple[str, str], tuple[str, str] | None] = {
    **_parse(TRANSPORT_TABLE),
    **_parse(BODY_TABLE),
}
CALL_NAMES: list[str] = list(dict.fromkeys(call for call, _ in EXPECTED))
assert set(FAULTS) == {fault for _, fault in EXPECTED}

# The parametrized cases: every applicable cell.
CASES: list[tuple[str, str]] = [
    (call, fault) for call in CALL_NAMES for fault in FAULTS if EXPECTED[call, fault] is not None
]


def _cell(value: tuple[str, str] | None) -> str:
    if value is None:
        return "—"
    once, always = ("✓" if code == "ok" else code for code in value)
    return once if once == always else f"{once} / {always}"


def render() -> str:
    """FAULT_MATRIX.md: the expected outcomes, which the test suite checks cell by cell."""
    from .support import CALLS

    out = [
        "# Fault matrix",
        "",
        "What each SDK call does when the API misbehaves, checked on asyncio and trio by",
        "`tests/reliability/test_fault_matrix.py` (one test case per cell) against the local",
        "server over real HTTP. Generated from the table in `tests/reliability/fault_matrix.py`",
        "by `python -m tests.reliability.fault_matrix`; a test fails if this file is stale.",
        "",
        "Each cell reads *once / always*: the outcome when the fault hits only the call's",
        "first matching request, and when it hits every attempt (one value: both). The",
        "client makes at most 3 attempts (2 under the read timeout, where its retry budget",
        "is 0.9 s). In every case the call ends within a bounded",
        "time, raises only the `nexus_async.errors` class shown (never a raw `httpx`,",
        "`json` or `KeyError` exception), and a create makes at most one resource: after an",
        "ambiguous failure it finds the resource it made (`recover=True`) instead of raising.",
        "",
        "| code | outcome |",
        "|---|---|",
        "| ✓ | success (after retries, where the fault was transient) |",
    ]
    for code, cls in OUTCOMES.items():
        if cls is not None:
            out.append(f"| {code} | `{cls.__name__}` |")
    out += [
        "| — | not applicable: the answer has no enum-like field, or (the upload) no body |",
        "",
    ]
    for title, faults in (
        ("Transport and status faults", list(FAULTS)[:10]),
        ("Body faults (on a 2xx answer)", list(FAULTS)[10:]),
    ):
        out += [f"## {title}", "", "| call | " + " | ".join(faults) + " |"]
        out.append("|---" * (len(faults) + 1) + "|")
        for call in CALL_NAMES:
            cells = [_cell(EXPECTED[call, fault]) for fault in faults]
            out.append(f"| `{call}` | " + " | ".join(cells) + " |")
        out.append("")
    out += ["## The faults", ""]
    for fault, text in FAULTS.items():
        how = "local server" if fault in SERVER_FAULTS else "proxy transport"
        out.append(f"- **{fault}** ({how}): {text}")
    out += ["", "## The calls", ""]
    for name in CALL_NAMES:
        out.append(f"- `{name}`: {CALLS[name].rule}")
    out.append("")
    return "\n".join(out)


MATRIX_FILE = Path(__file__).with_name("FAULT_MATRIX.md")

if __name__ == "__main__":
    MATRIX_FILE.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {MATRIX_FILE}\n")
