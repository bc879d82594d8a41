"""The fast converter decodes exactly what the detailed one does; failures keep its messages."""

from __future__ import annotations

from typing import Any

import cattrs
import pytest

from nexus_async import JobLogEntry, LogLevel, StructureError
from nexus_async._convert import converters, structure

GOOD: dict[str, Any] = {
    "kind": "ItemPredicted",
    "createTime": 1_000,
    "id": "000000000000000000000001",
    "level": "Info",
    "item": "a.jpg",
    "status": "Predicted",
    "timeMs": 12.5,
    "reason": "",
}


@pytest.mark.parametrize(
    "changes",
    [{}, {"timeMs": 3}, {"level": "Verbose"}, {"extra": 1}, {"reason": "slow"}],
)
def test_the_fast_hooks_agree_with_the_detailed_ones(changes: dict[str, Any]) -> None:
    data = {**GOOD, **changes}
    fast = converters().fast.structure(data, JobLogEntry)
    assert fast == converters().detailed.structure(data, JobLogEntry)
    assert type(fast.time_ms) is float
    assert structure(data, JobLogEntry) == fast
    missing_reason = {k: v for k, v in data.items() if k != "reason"}
    assert structure(missing_reason, JobLogEntry).reason == ""


def test_a_known_level_is_the_enum_member() -> None:
    assert structure(GOOD, JobLogEntry).level is LogLevel.INFO


@pytest.mark.parametrize(
    "changes",
    [
        {"createTime": "5"},
        {"createTime": True},
        {"createTime": 1.5},
        {"timeMs": True},
        {"timeMs": "1"},
        {"level": 3},
        {"id": None},
        {"reason": None},
    ],
)
def test_a_bad_entry_fails_with_the_detailed_message(changes: dict[str, Any]) -> None:
    data = {**GOOD, **changes}
    with pytest.raises(cattrs.BaseValidationError) as detailed:
        converters().detailed.structure([GOOD, data], list[JobLogEntry])
    expected = "; ".join(cattrs.transform_error(detailed.value, path="$"))
    with pytest.raises(StructureError) as info:
        structure([GOOD, data], list[JobLogEntry])
    assert str(info.value) == f"unexpected response shape: {expected}"
    assert "$[1]." in str(info.value)


def test_a_missing_key_fails_with_the_detailed_message() -> None:
    data = {k: v for k, v in GOOD.items() if k != "id"}
    with pytest.raises(StructureError, match=r"required field missing @ \$\[0\]\.id"):
        structure([data], list[JobLogEntry])
