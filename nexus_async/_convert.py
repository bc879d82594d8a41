"""The one cattrs converter between the models and the wire JSON.

Built once, in this order (hooks registered later win, so order matters):

1. `cattrs.preconf.json.make_converter()` with `forbid_extra_keys=False`: the API
   may add fields, and we ignore the ones we don't know.
2. Strict scalar hooks: a wrong JSON type fails with its path instead of being
   coerced (`int("5")` would hide a broken response).
3. "Known enum or plain str" hooks, so a new overview value or log level from the
   API is kept as a string rather than failing the whole response.
4. One camelCase hook factory for every attrs class; the names that break the rule
   (the PascalCase item counters) are looked up first in `_WIRE_NAMES`.
5. `kind`-tagged unions (deployments, destinations) with an explicit tag table and
   an `Unknown*` fallback that keeps the raw JSON of kinds we don't know.

It is built twice: `structure` decodes with the copy built without detailed
validation, and only an answer that fails there is decoded again with the
detailed one, whose error lists every bad path. The fast copy also has
hand-written hooks for the hot classes (a job and everything below it, a log
entry), because there the models' constructors and cattrs' per-field dispatch
are most of the time: they build the models directly and leave anything unusual
to the generated hooks (see the section below).

Both are built on first use, not at import: importing cattrs and building them
takes about 15 ms (some 5% of the reference SDK's whole import), and a program
that imports the package (a CLI's `--help`, a web service's startup) may never
decode anything.
"""

from __future__ import annotations

import enum
import functools
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import attrs

from . import models as m
from .errors import StructureError

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "DecodeFailure",
    "converters",
    "decode_log_entry",
    "structure",
    "to_camel",
    "unstructure",
]

T = TypeVar("T")

# The former name of `StructureError`, kept so existing imports keep working.
DecodeFailure = StructureError


def to_camel(name: str) -> str:
    """`project_id` -> `projectId`."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Wire names that do not follow the camelCase rule.
_WIRE_NAMES: dict[type, dict[str, str]] = {
    m.JobItemStatus: {
        "gathered": "Gathered",
        "failed_gather": "FailedGather",
        "preprocessed": "Preprocessed",
        "failed_process": "FailedProcess",
        "predicted": "Predicted",
        "failed_predict": "FailedPredict",
        "delivered": "Delivered",
        "failed_deliver": "FailedDeliver",
    },
    # The reference SDK calls the backoff cap `max_retry_delay`; the wire, `maxBackoffMs`.
    m.WebhookRetries: {"max_retry_delay": "maxBackoffMs"},
}

# Request-side classes whose unset optional fields are left out of the JSON
# rather than sent as null.
_OMIT_DEFAULTS: frozenset[type] = frozenset(
    {
        m.DeploymentTemplate,
        m.DeploymentOptions,
        m.JobSpec,
        # Response-side, but its optional echoes of the declared file may be absent.
        m.DatasetSource,
    }
)


def _strict_int(value: Any, _: type) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")
    return value


def _strict_float(value: Any, _: type) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _strict_str(value: Any, _: type) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
    return value


def _strict_bool(value: Any, _: type) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {type(value).__name__} {value!r}")
    return value


def _open_enum(enum_cls: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    """Structure a known value into the enum member, an unknown string as itself."""
    members = {member.value: member for member in enum_cls}

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not str:
            raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")
        return members.get(value, value)

    return hook


def _tagged_union(
    conv: cattrs.Converter, tags: Mapping[str, type], unknown: type
) -> tuple[Callable[[Any, Any], Any], Callable[[Any], dict[str, Any]]]:
    """Hooks for a union discriminated by the `kind` key, with a fallback class."""
    from cattrs.gen import make_dict_unstructure_fn

    by_class = {cls: tag for tag, cls in tags.items()}
    # Each member's own dict hook, built here because the member classes get the
    # tagging hook below as their unstructure hook.
    plain: dict[type, Callable[[Any], dict[str, Any]]] = {
        cls: make_dict_unstructure_fn(cls, conv, **_renames(cls)) for cls in by_class
    }

    def structure_hook(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        kind = value.get("kind")
        if type(kind) is not str:
            raise TypeError(f"expected a string `kind`, got {kind!r}")
        cls = tags.get(kind)
        if cls is None:
            return unknown(kind=kind, data=dict(value))
        return conv.structure(value, cls)

    def unstructure_hook(obj: Any) -> dict[str, Any]:
        if isinstance(obj, unknown):
            return dict(obj.data)  # type: ignore[attr-defined]
        cls = type(obj)
        return {"kind": by_class[cls], **plain[cls](obj)}

    return structure_hook, unstructure_hook


def _is(expected: Any) -> Callable[[Any], bool]:
    """A hook predicate matching one type (unions compare equal across spellings)."""
    return lambda t: bool(t == expected)


def _attrs_class(cl: Any) -> type:
    """The attrs class behind `cl`, which may be a parametrised generic."""
    return typing.get_origin(cl) or cl  # type: ignore[no-any-return]


def _renames(cl: Any) -> dict[str, Any]:
    from cattrs.gen import override

    base = _attrs_class(cl)
    table = _WIRE_NAMES.get(base, {})
    return {
        a.name: override(rename=table.get(a.name, to_camel(a.name))) for a in attrs.fields(base)
    }


def _build(detailed: bool) -> cattrs.Converter:
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
    from cattrs.preconf.json import make_converter

    conv = make_converter(forbid_extra_keys=False, detailed_validation=detailed)

    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)

    for open_enum in (m.JobStatusOverview, m.LogLevel, m.DatasetStatusOverview):
        # A predicate hook: unions registered by type would lose to the preset's
        # union passthrough, which would keep every value a plain str.
        union = open_enum | str
        conv.register_structure_hook_func(_is(union), _open_enum(open_enum))

    conv.register_structure_hook_factory(
        attrs.has, lambda cl: make_dict_structure_fn(cl, conv, **_renames(cl))
    )
    conv.register_unstructure_hook_factory(
        attrs.has,
        lambda cl: make_dict_unstructure_fn(
            cl,
            conv,
            _cattrs_omit_if_default=_attrs_class(cl) in _OMIT_DEFAULTS,
            **_renames(cl),
        ),
    )

    unions: list[tuple[Any, Mapping[str, type], type]] = [
        (
            m.Deployment,
            {
                "ExistingDeployment": m.ExistingDeployment,
                "NewEphemeralDeployment": m.NewEphemeralDeployment,
            },
            m.UnknownDeployment,
        ),
        (m.Destination, {"Webhook": m.WebhookDestination}, m.UnknownDestination),
    ]
    for union, tags, unknown in unions:
        structure_hook, unstructure_hook = _tagged_union(conv, tags, unknown)
        conv.register_structure_hook_func(_is(union), structure_hook)
        conv.register_unstructure_hook_func(_is(union), unstructure_hook)
        # Members unstructured on their own (not through the union) carry their tag too.
        for cls in (*tags.values(), unknown):
            conv.register_unstructure_hook(cls, unstructure_hook)
    return conv


# --------------------------------------------------------------------------------------
# Hand-written hooks of the hot classes (a job's tree, a log entry), for the fast
# converter only: they build the models directly, without the generated hooks'
# per-field dispatch. Each accepts only input the generated hooks decode, and
# returns the same models; anything else (a wrong type, a missing key, a kind it
# does not know, a non-list where a list goes) raises, and `structure` then decodes
# the data with the detailed converter, which agrees or says what is wrong.
# tests/sdk/test_convert_fast.py checks them against it over many varied payloads.


class _Unusual(Exception):
    """Input a hand-written hook leaves to the generated ones."""


def _builder(cls: type[T]) -> Callable[..., T]:
    """A constructor of the frozen attrs class `cls` that fills its slots directly.

    A frozen class's `__init__` sets each field through `object.__setattr__`; the
    slots' own descriptors take about half as long (230 ns of a log entry's 940 ns
    decode). It takes every field (by position or name) and skips `__init__`, so it
    is only for the hand-written hooks, which pass values already checked, and only
    for classes with nothing in `__init__` to skip: no validators, converters or
    `__attrs_post_init__` (checked here, at the converter's build).
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    if any(f.validator or f.converter for f in fields) or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} does more in __init__ than set its fields")
    setters = {
        f"_set_{f.name}": next(
            c.__dict__[f.name] for c in cls.__mro__ if f.name in c.__dict__
        ).__set__
        for f in fields
    }
    lines = [f"def build({', '.join(f.name for f in fields)}):", "    self = _new(_cls)"]
    lines += [f"    _set_{f.name}(self, {f.name})" for f in fields]
    lines.append("    return self")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec("\n".join(lines), namespace)  # as attrs writes `__init__`: one plain function
    return namespace["build"]  # type: ignore[no-any-return]


def _str_or_none(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise _Unusual


def _int_or_none(value: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise _Unusual


def decode_log_entry(o: Any, _: Any = None) -> m.JobLogEntry:
    """`JobLogEntry`: the hot path of log streaming, which calls it for each entry.

    Like the other hand-written hooks it raises on anything unusual, and the
    caller then decodes with `structure`, which agrees or says what is wrong.
    """
    kind, create_time, ident = o["kind"], o["createTime"], o["id"]
    level, item, status, time_ms = o["level"], o["item"], o["status"], o["timeMs"]
    reason = o.get("reason", "")
    if not (
        type(kind) is str
        and type(create_time) is int
        and type(ident) is str
        and type(level) is str
        and type(item) is str
        and type(status) is str
        and type(reason) is str
    ):
        raise _Unusual
    if type(time_ms) is not float:
        time_ms = _strict_float(time_ms, float)
    return _new_JobLogEntry(
        kind, create_time, ident, _LOG_LEVELS.get(level, level), item, status, time_ms, reason
    )


def _job_fast(o: Any, _: Any) -> m.Job:
    """`Job`, and every class below it: the hot path of listing and polling jobs."""
    ident, obj, name, project_id = o["id"], o["object"], o["name"], o["projectId"]
    create_date, update_date = o["createDate"], o["updateDate"]
    if not (
        type(ident) is str
        and type(obj) is str
        and type(name) is str
        and type(project_id) is str
        and type(create_date) is int
        and type(update_date) is int
    ):
        raise _Unusual
    spec, status = o["spec"], o["status"]
    if type(spec) is not dict or type(status) is not dict:
        raise _Unusual
    return _new_Job(
        ident,
        obj,
        name,
        project_id,
        _job_spec(spec),
        _job_status(status),
        create_date,
        update_date,
    )


def _job_spec(o: dict[str, Any]) -> m.JobSpec:
    dataset_id, deployment = o["datasetId"], o["deployment"]
    destinations = o["resultDelivery"]["destinations"]
    if type(dataset_id) is not str or type(deployment) is not dict:
        raise _Unusual
    if type(destinations) is not list:
        raise _Unusual
    return _new_JobSpec(
        dataset_id,
        _deployment(deployment),
        _new_ResultDelivery([_destination(d) for d in destinations]),
        _int_or_none(o.get("startAtTime")),
        _int_or_none(o.get("stopAtTime")),
    )


def _deployment(o: dict[str, Any]) -> m.Deployment:
    kind = o["kind"]
    if kind == "ExistingDeployment":
        deployment_id = o["deploymentId"]
        if type(deployment_id) is not str:
            raise _Unusual
        return _new_ExistingDeployment(deployment_id)
    if kind == "NewEphemeralDeployment":
        template = o["template"]
        if type(template) is not dict:
            raise _Unusual
        return _new_NewEphemeralDeployment(_template(template))
    if type(kind) is not str:
        raise _Unusual
    return _new_UnknownDeployment(kind=kind, data=dict(o))


def _template(o: dict[str, Any]) -> m.DeploymentTemplate:
    artifact_id, options = o["artifactId"], o.get("options")
    if type(artifact_id) is not str:
        raise _Unusual
    if options is not None:
        if type(options) is not dict:
            raise _Unusual
        options = _options(options)
    return _new_DeploymentTemplate(
        artifact_id=artifact_id,
        name=_str_or_none(o.get("name")),
        replicas=_int_or_none(o.get("replicas")),
        region=_str_or_none(o.get("region")),
        version_tag=_str_or_none(o.get("versionTag")),
        instance_id=_str_or_none(o.get("instanceId")),
        options=options,
    )


def _options(o: dict[str, Any]) -> m.DeploymentOptions:
    threshold, group = o.get("evaluationThreshold"), o.get("evaluationGroup")
    if threshold is not None and type(threshold) is not float:
        threshold = _strict_float(threshold, float)
    if group is not None:
        if type(group) is not list or not all(type(tag) is str for tag in group):
            raise _Unusual
        group = list(group)
    return _new_DeploymentOptions(_str_or_none(o.get("evaluationStrategy")), threshold, group)


def _destination(o: Any) -> m.Destination:
    if type(o) is not dict:
        raise _Unusual
    kind = o["kind"]
    if kind == "Webhook":
        webhook_id = o["webhookId"]
        if type(webhook_id) is not str:
            raise _Unusual
        return _new_WebhookDestination(webhook_id)
    if type(kind) is not str:
        raise _Unusual
    return _new_UnknownDestination(kind=kind, data=dict(o))


def _job_status(o: dict[str, Any]) -> m.JobStatus:
    overview, message, update_date = o["overview"], o["message"], o["updateDate"]
    items = o["items"]
    if not (
        type(overview) is str
        and type(message) is str
        and type(update_date) is int
        and type(items) is dict
    ):
        raise _Unusual
    return _new_JobStatus(
        _OVERVIEWS.get(overview, overview),
        message,
        update_date,
        _job_items(items),
        _str_or_none(o.get("reason")),
        _int_or_none(o.get("cancelledAt")),
    )


def _job_items(o: dict[str, Any]) -> m.JobItemStatus:
    counts = (
        o["Gathered"],
        o["FailedGather"],
        o["Preprocessed"],
        o["FailedProcess"],
        o["Predicted"],
        o["FailedPredict"],
        o["Delivered"],
        o["FailedDeliver"],
    )
    for count in counts:
        if type(count) is not int:
            raise _Unusual
    return _new_JobItemStatus(*counts)


# The hot classes' constructors, for the hooks above (see `_builder`).
_new_JobLogEntry = _builder(m.JobLogEntry)
_new_Job = _builder(m.Job)
_new_JobSpec = _builder(m.JobSpec)
_new_ResultDelivery = _builder(m.ResultDelivery)
_new_ExistingDeployment = _builder(m.ExistingDeployment)
_new_NewEphemeralDeployment = _builder(m.NewEphemeralDeployment)
_new_UnknownDeployment = _builder(m.UnknownDeployment)
_new_DeploymentTemplate = _builder(m.DeploymentTemplate)
_new_DeploymentOptions = _builder(m.DeploymentOptions)
_new_WebhookDestination = _builder(m.WebhookDestination)
_new_UnknownDestination = _builder(m.UnknownDestination)
_new_JobStatus = _builder(m.JobStatus)
_new_JobItemStatus = _builder(m.JobItemStatus)

# The open enums' members by value: what `_open_enum` looks up, without the call.
_LOG_LEVELS = {level.value: level for level in m.LogLevel}
_OVERVIEWS = {overview.value: overview for overview in m.JobStatusOverview}


class Converters(NamedTuple):
    """The one converter, built twice.

    Attributes:
        detailed: With cattrs' detailed validation: its errors list every bad path.
        fast: The same hooks without it (collecting every error with its path costs
            about as much as the decoding itself), plus hand-written hooks for the
            hot classes; they accept only what `detailed` decodes to the same models.
    """

    detailed: cattrs.Converter
    fast: cattrs.Converter


@functools.cache
def converters() -> Converters:
    """Both converters, built on the first call."""
    fast = _build(detailed=False)
    fast.register_structure_hook(m.JobLogEntry, decode_log_entry)
    fast.register_structure_hook(m.Job, _job_fast)
    return Converters(detailed=_build(detailed=True), fast=fast)


def structure(data: Any, cls: type[T]) -> T:
    """JSON data -> model.

    Decoded by the fast converter; only data it rejects is decoded again by the
    detailed one, which either agrees or says what is wrong.

    Raises:
        nexus_async.StructureError: `data` does not fit `cls`; the message lists every
            bad path. A number too large to convert raises it too, not `OverflowError`.
    """
    if cls is dict and type(data) is dict:  # a JSON object asked for as one (a log page)
        return data  # type: ignore[return-value]
    built = converters()
    try:
        return built.fast.structure(data, cls)
    except Exception:  # whatever the fast hooks raise: the detailed ones say it properly
        pass
    import cattrs  # loaded by `converters()` already

    try:
        return built.detailed.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, OverflowError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc, path="$"))
        else:
            detail = f"$: {exc}"
        raise StructureError(f"unexpected response shape: {detail}") from exc


def unstructure(obj: Any) -> Any:
    """Model -> JSON-ready data (wire names)."""
    return converters().detailed.unstructure(obj)
