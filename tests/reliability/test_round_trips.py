"""Generated wire JSON -> model -> JSON is lossless for every response model.

The strategies build JSON exactly as the spec shows it: every field present with
its type, `null` only where the spec allows it, optional request-side fields
(start/stop times, template fields) either present or absent, enum fields known or
not, union members of known kinds or of kinds the SDK has never heard of.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nexus_async._convert import structure, unstructure
from nexus_async.models import Dataset, Job, JobLogs, PaginationResponse, Webhook

ROUND_TRIPS = settings(max_examples=150, deadline=None, derandomize=True)

TEXT = st.text(max_size=20)
MS = st.integers(0, 2**53)
COUNT = st.integers(0, 2**31)
NUMBER = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), TEXT, st.floats(allow_nan=False))
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)


def open_enum(*known: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(known), TEXT)


def unknown_kind(*known: str) -> st.SearchStrategy[dict[str, Any]]:
    """A union member of a kind the SDK does not know, with arbitrary fields."""
    return st.builds(
        lambda kind, rest: {**rest, "kind": kind},
        TEXT.filter(lambda k: k not in known),
        st.dictionaries(TEXT, JSON_VALUE, max_size=3),
    )


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> Any:
    return st.fixed_dictionaries(
        {k: v if isinstance(v, st.SearchStrategy) else st.just(v) for k, v in required.items()},
        optional=optional or {},
    )


TEMPLATE = obj(
    {"artifactId": TEXT},
    {
        "name": TEXT,
        "replicas": COUNT,
        "region": TEXT,
        "versionTag": TEXT,
        "instanceId": TEXT,
        "options": obj(
            {},
            {
                "evaluationStrategy": TEXT,
                "evaluationThreshold": NUMBER,
                "evaluationGroup": st.lists(TEXT, max_size=3),
            },
        ),
    },
)
DEPLOYMENT = st.one_of(
    obj({"kind": "ExistingDeployment", "deploymentId": TEXT}),
    obj({"kind": "NewEphemeralDeployment", "template": TEMPLATE}),
    unknown_kind("ExistingDeployment", "NewEphemeralDeployment"),
)
DESTINATION = st.one_of(obj({"kind": "Webhook", "webhookId": TEXT}), unknown_kind("Webhook"))
SPEC = obj(
    {
        "datasetId": TEXT,
        "deployment": DEPLOYMENT,
        "resultDelivery": obj({"destinations": st.lists(DESTINATION, max_size=3)}),
    },
    {"startAtTime": MS, "stopAtTime": MS},
)
COUNTERS = obj(
    {
        name: COUNT
        for name in (
            "Gathered",
            "FailedGather",
            "Preprocessed",
            "FailedProcess",
            "Predicted",
            "FailedPredict",
            "Delivered",
            "FailedDeliver",
        )
    }
)
JOB = obj(
    {
        "id": TEXT,
        "object": TEXT,
        "name": TEXT,
        "projectId": TEXT,
        "spec": SPEC,
        "status": obj(
            {
                "overview": open_enum("Waiting", "Reached", "Failed"),
                "message": TEXT,
                "updateDate": MS,
                "reason": st.none() | TEXT,
                "cancelledAt": st.none() | MS,
                "items": COUNTERS,
            }
        ),
        "createDate": MS,
        "updateDate": MS,
    }
)
PAGE = obj(
    {
        "nextPage": st.none() | TEXT,
        "prevPage": st.none() | TEXT,
        "data": st.lists(JOB, max_size=3),
    }
)
LOGS = obj(
    {
        "id": TEXT,
        "object": TEXT,
        "projectId": TEXT,
        "entries": st.lists(
            obj(
                {
                    "id": TEXT,
                    "kind": TEXT,
                    "createTime": MS,
                    "level": open_enum("Debug", "Info", "Warning", "Error"),
                    "item": TEXT,
                    "status": TEXT,
                    "timeMs": NUMBER,
                    "reason": TEXT,
                }
            ),
            max_size=4,
        ),
    }
)
DATASET = obj(
    {
        "id": TEXT,
        "object": TEXT,
        "name": TEXT,
        "projectId": TEXT,
        "expiryTime": MS,
        "createDate": MS,
        "updateDate": MS,
        "status": obj(
            {
                "overview": open_enum(
                    "Waiting",
                    "Uploading",
                    "Uploaded",
                    "Processing",
                    "Processed",
                    "FailedUpload",
                    "FailedProcessing",
                ),
                "message": TEXT,
                "updateTime": MS,
                "itemCount": COUNT,
                "source": obj(
                    {
                        "kind": TEXT,
                        "uploadUrl": obj(
                            {
                                "method": TEXT,
                                "url": TEXT,
                                "headers": st.dictionaries(TEXT, TEXT, max_size=3),
                                "expiresAtTime": MS,
                            }
                        ),
                    },
                    {"sizeBytes": COUNT, "crc32c": TEXT},
                ),
            }
        ),
    }
)
WEBHOOK = obj(
    {
        "id": TEXT,
        "object": TEXT,
        "projectId": TEXT,
        "name": TEXT,
        "endpoint": TEXT,
        "retries": obj({"maxRetries": COUNT, "maxBackoffMs": COUNT}),
        "createDate": MS,
        "updateDate": MS,
    }
)


def round_trip(data: Any, cls: Any) -> None:
    wire = json.loads(json.dumps(data))
    again = json.loads(json.dumps(unstructure(structure(wire, cls))))
    assert again == wire


@ROUND_TRIPS
@given(JOB)
def test_job(data: Any) -> None:
    round_trip(data, Job)


@ROUND_TRIPS
@given(PAGE)
def test_page_of_jobs(data: Any) -> None:
    round_trip(data, PaginationResponse[Job])


@ROUND_TRIPS
@given(LOGS)
def test_job_logs(data: Any) -> None:
    round_trip(data, JobLogs)


@ROUND_TRIPS
@given(DATASET)
def test_dataset(data: Any) -> None:
    round_trip(data, Dataset)


@ROUND_TRIPS
@given(
    obj(
        {
            "nextPage": st.none() | TEXT,
            "prevPage": st.none() | TEXT,
            "data": st.lists(DATASET, max_size=2),
        }
    )
)
def test_page_of_datasets(data: Any) -> None:
    round_trip(data, PaginationResponse[Dataset])


@ROUND_TRIPS
@given(WEBHOOK)
def test_webhook(data: Any) -> None:
    round_trip(data, Webhook)
