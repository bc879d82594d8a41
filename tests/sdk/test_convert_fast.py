"""The fast converter decodes exactly what the detailed one does; failures keep its messages.

The fast one has hand-written hooks for the hot classes (a log entry, a job's tree);
these are checked against the detailed converter's generated hooks over many
payloads, valid and broken.
"""

from __future__ import annotations

import copy
from typing import Any

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus_async import Job, JobLogEntry, LogLevel, PaginationResponse, StructureError
from nexus_async._convert import converters, structure

from . import wire

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


# --------------------------------------------------------------------------------------
# The hand-written `Job` hooks against the generated (detailed) ones, over many payloads:
# valid ones of every shape the spec allows, and the same with one part broken.

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4)
)
# Anything JSON could put where a field goes: the wrong scalar, a list, an object.
ANY_JSON = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
)
IDS = st.text(min_size=1, max_size=6)
TIMES = st.integers(min_value=0, max_value=2**53)


def _optional(
    draw: st.DrawFn, data: dict[str, Any], key: str, value: st.SearchStrategy[Any]
) -> None:
    """Leave `key` out, set it to null, or to a drawn value."""
    choice = draw(st.sampled_from(["missing", "null", "value"]))
    if choice != "missing":
        data[key] = None if choice == "null" else draw(value)


def _extra(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """Sometimes add keys the SDK does not know (the API may add fields)."""
    if draw(st.booleans()):
        data[draw(st.sampled_from(["newField", "eta", "x"]))] = draw(ANY_JSON)
    return data


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["ExistingDeployment", "NewEphemeralDeployment", "Serverless"]))
    if kind == "ExistingDeployment":
        return _extra(draw, {"kind": kind, "deploymentId": draw(IDS)})
    if kind == "Serverless":  # a kind this SDK version does not know
        return _extra(draw, {"kind": kind, "endpoint": draw(IDS)})
    template: dict[str, Any] = {"artifactId": draw(IDS)}
    for key in ("name", "region", "versionTag", "instanceId"):
        _optional(draw, template, key, IDS)
    _optional(draw, template, "replicas", st.integers(0, 10))
    options: dict[str, Any] = {}
    _optional(draw, options, "evaluationStrategy", IDS)
    _optional(
        draw,
        options,
        "evaluationThreshold",
        st.one_of(st.floats(0, 1), st.integers(0, 1), st.just(10**400)),
    )
    _optional(draw, options, "evaluationGroup", st.lists(IDS, max_size=3))
    _optional(draw, template, "options", st.just(_extra(draw, options)))
    return _extra(draw, {"kind": kind, "template": _extra(draw, template)})


@st.composite
def valid_jobs(draw: st.DrawFn) -> dict[str, Any]:
    destination = st.one_of(
        st.builds(lambda i: {"kind": "Webhook", "webhookId": i}, IDS),
        st.builds(lambda i: {"kind": "Queue", "queue": i}, IDS),
    )
    spec: dict[str, Any] = {
        "datasetId": draw(IDS),
        "deployment": draw(deployments()),
        "resultDelivery": _extra(draw, {"destinations": draw(st.lists(destination, max_size=3))}),
    }
    _optional(draw, spec, "startAtTime", TIMES)
    _optional(draw, spec, "stopAtTime", TIMES)
    items = {key: draw(st.integers(0, 10**6)) for key in ITEM_KEYS}
    status: dict[str, Any] = {
        "overview": draw(st.sampled_from(["Waiting", "Reached", "Failed", "Paused"])),
        "message": draw(st.text(max_size=8)),
        "updateDate": draw(TIMES),
        "items": _extra(draw, items),
    }
    _optional(draw, status, "reason", st.text(max_size=8))
    _optional(draw, status, "cancelledAt", TIMES)
    job = {
        "id": draw(IDS),
        "object": "batch_job",
        "name": draw(st.text(max_size=8)),
        "projectId": draw(IDS),
        "spec": _extra(draw, spec),
        "status": _extra(draw, status),
        "createDate": draw(TIMES),
        "updateDate": draw(TIMES),
    }
    return _extra(draw, job)


ITEM_KEYS = (
    "Gathered",
    "FailedGather",
    "Preprocessed",
    "FailedProcess",
    "Predicted",
    "FailedPredict",
    "Delivered",
    "FailedDeliver",
)


@st.composite
def broken_jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid job with one value somewhere replaced by any JSON, or one key removed."""
    job = copy.deepcopy(draw(valid_jobs()))
    node: Any = job
    for _ in range(6):  # walk down to a random object or list, then break one part of it
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        if isinstance(node, dict) and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(ANY_JSON)
        break
    return job


def _outcome(conv: cattrs.Converter, data: Any, cls: Any) -> tuple[str, Any]:
    try:
        return "ok", conv.structure(data, cls)
    except Exception as exc:
        return "error", exc


def _check_against_the_generated_hooks(data: Any, cls: Any) -> bool:
    """The fast result, if any, is the detailed one; `structure` says what it says.

    Returns whether the fast hooks decoded `data` themselves.
    """
    fast, detailed = (
        _outcome(converters().fast, data, cls),
        _outcome(converters().detailed, data, cls),
    )
    if fast[0] == "ok":
        assert detailed[0] == "ok", detailed[1]
        # repr as well as ==: 1 == 1.0 == True, and an enum member == its value.
        assert fast[1] == detailed[1]
        assert repr(fast[1]) == repr(detailed[1])
    if detailed[0] == "ok":
        assert repr(structure(data, cls)) == repr(detailed[1])
    else:
        exc = detailed[1]
        if isinstance(exc, cattrs.BaseValidationError):
            expected = "; ".join(cattrs.transform_error(exc, path="$"))
        else:
            expected = f"$: {exc}"
        with pytest.raises(StructureError) as info:
            structure(data, cls)
        assert str(info.value) == f"unexpected response shape: {expected}"
    return fast[0] == "ok"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(valid_jobs())
def test_valid_jobs_decode_on_the_fast_path_to_the_generated_result(job: dict[str, Any]) -> None:
    fast_path_taken = _check_against_the_generated_hooks(job, Job)
    huge = job["spec"]["deployment"].get("template", {}).get("options") or {}
    if huge.get("evaluationThreshold") != 10**400:  # too large for a float: an error
        assert fast_path_taken


@settings(max_examples=600, deadline=None, derandomize=True)
@given(broken_jobs())
def test_broken_jobs_decode_or_fail_exactly_as_the_generated_hooks_say(
    job: dict[str, Any],
) -> None:
    _check_against_the_generated_hooks(job, Job)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.one_of(valid_jobs(), broken_jobs()), max_size=4))
def test_pages_of_jobs_agree_with_the_generated_hooks(jobs: list[dict[str, Any]]) -> None:
    page = {"nextPage": None, "prevPage": "p", "data": jobs}
    _check_against_the_generated_hooks(page, PaginationResponse[Job])


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("createDate",), "1723734419985"),
        (("status", "items", "Gathered"), True),
        (("status", "overview"), None),
        (("status", "cancelledAt"), 1.5),
        (("spec", "deployment", "deploymentId"), 7),
        (("spec", "resultDelivery", "destinations"), {"kind": "Webhook"}),
        (("spec", "startAtTime"), False),
    ],
)
def test_a_bad_job_fails_with_the_detailed_message(where: tuple[str, ...], value: Any) -> None:
    data = copy.deepcopy(wire.JOB)
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert not _check_against_the_generated_hooks(data, Job)  # left to the detailed hooks
    with pytest.raises(StructureError, match=r"\$\."):  # ... which name the path
        structure(data, Job)


def test_the_spec_job_takes_the_fast_path() -> None:
    assert _check_against_the_generated_hooks(wire.JOB, Job)
    ephemeral = wire.job(spec={**wire.JOB["spec"], "deployment": wire.EPHEMERAL_DEPLOYMENT})
    assert _check_against_the_generated_hooks(ephemeral, Job)
