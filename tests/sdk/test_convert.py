"""The converter: spec JSON -> models -> the same JSON, and tolerance where the spec allows."""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.json import make_converter

from nexus_async import NexusError, StructureError, _convert, models, structure, unstructure
from nexus_async.models import (
    Job,
    JobLogs,
    JobStatusOverview,
    LogLevel,
    NewEphemeralDeployment,
    PaginationResponse,
    UnknownDeployment,
)

from . import wire


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        (wire.JOB, Job),
        (wire.job(spec={**wire.JOB["spec"], "deployment": wire.EPHEMERAL_DEPLOYMENT}), Job),
        (wire.page(wire.JOB, wire.JOB, next_page="abc"), PaginationResponse[Job]),
        (wire.JOB_LOGS, JobLogs),
        ({"id": "batchjob_1", "deleted": True}, models.DeleteResponse),
    ],
)
def test_round_trip_is_lossless(data: dict[str, Any], cls: type) -> None:
    assert unstructure(structure(data, cls)) == data


def test_every_field_is_renamed() -> None:
    """A strict twin that forbids unknown keys catches a field the renames missed."""
    strict = make_converter(forbid_extra_keys=True)
    strict.register_structure_hook_factory(
        attrs.has,
        lambda cl: make_dict_structure_fn(
            cl, strict, _cattrs_forbid_extra_keys=True, **_convert._renames(cl)
        ),
    )
    for union in (models.Deployment, models.Destination):
        strict.register_structure_hook_func(
            _convert._is(union), _convert.converters().detailed.get_structure_hook(union)
        )
    strict.structure(wire.JOB, Job)
    strict.structure(wire.JOB_LOGS, JobLogs)


def test_snake_case_fields_and_pascal_case_counters() -> None:
    job = structure(wire.JOB, Job)
    assert job.project_id == wire.JOB["projectId"]
    destination = job.spec.result_delivery.destinations[0]
    assert isinstance(destination, models.WebhookDestination)
    assert destination.webhook_id.startswith("webhook_")
    assert job.status.items.failed_deliver == 1
    assert job.status.items.preprocessed == 48
    assert job.status.items.failed == 4  # one at each stage
    assert job.status.items.ended == 46 + 4
    assert job.status.overview is JobStatusOverview.REACHED
    assert job.is_finished


def test_unknown_keys_are_ignored() -> None:
    data = wire.job(newField={"x": 1})
    data["status"] = {**data["status"], "eta": 12}
    assert structure(data, Job) == structure(wire.JOB, Job)


def test_unknown_overview_is_kept_and_means_not_finished() -> None:
    data = wire.job(status={**wire.JOB["status"], "overview": "Paused"})
    job = structure(data, Job)
    assert job.status.overview == "Paused"
    assert not job.is_finished
    assert unstructure(job)["status"]["overview"] == "Paused"


def test_unknown_log_level_is_kept() -> None:
    entry = {**wire.LOG_ENTRY, "level": "Critical"}
    assert structure(entry, models.JobLogEntry).level == "Critical"
    assert structure(wire.LOG_ENTRY, models.JobLogEntry).level is LogLevel.INFO


def test_unknown_deployment_kind_keeps_its_json() -> None:
    raw = {"kind": "ServerlessDeployment", "endpoint": "x"}
    job = structure(wire.job(spec={**wire.JOB["spec"], "deployment": raw}), Job)
    assert job.spec.deployment == UnknownDeployment(kind="ServerlessDeployment", data=raw)
    assert unstructure(job)["spec"]["deployment"] == raw


def test_ephemeral_template_omits_unset_fields() -> None:
    spec = models.JobSpec(
        dataset_id="dataset_1",
        deployment=NewEphemeralDeployment(
            template=models.DeploymentTemplate(artifact_id="artifact_1", replicas=2)
        ),
        result_delivery=models.ResultDelivery(
            destinations=[models.WebhookDestination("webhook_1")]
        ),
    )
    assert unstructure(spec) == {
        "datasetId": "dataset_1",
        "deployment": {
            "kind": "NewEphemeralDeployment",
            "template": {"artifactId": "artifact_1", "replicas": 2},
        },
        "resultDelivery": {"destinations": [{"kind": "Webhook", "webhookId": "webhook_1"}]},
    }


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("createDate",), "1723734419985", "create_date"),
        (("status", "items", "Gathered"), 1.5, "items.gathered"),
        (("status", "items", "Delivered"), True, "items.delivered"),
        (("name",), 5, "name"),
        (("status", "overview"), 3, "overview"),
        (("spec", "deployment"), {"deploymentId": "deploy_1"}, "deployment"),
    ],
)
def test_wrong_types_fail_with_their_path(path: tuple[str, ...], value: Any, where: str) -> None:
    data = copy.deepcopy(wire.JOB)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(StructureError, match=where.replace(".", r"\.")):
        structure(data, Job)


def test_missing_field_fails() -> None:
    data = wire.job()
    del data["status"]["items"]["FailedGather"]
    with pytest.raises(StructureError, match="failed_gather"):
        structure(data, Job)


def test_dict_style_reads() -> None:
    page = structure(wire.page(wire.JOB, next_page="cur"), PaginationResponse[Job])
    assert page["next_page"] == "cur"
    assert page["prev_page"] is None
    assert page["data"][0]["status"]["items"]["gathered"] == 50
    assert page.get("nope", 7) == 7
    assert "data" in page
    assert "nope" not in page
    assert page.keys() == ["next_page", "prev_page", "data"]
    with pytest.raises(KeyError):
        page["__class__"]


def test_structure_errors_are_public_nexus_errors() -> None:
    with pytest.raises(NexusError) as info:
        structure({"id": 5}, Job)
    assert type(info.value) is StructureError
    assert StructureError.__module__ == "nexus_async"  # public, not `_convert`
    assert isinstance(info.value, ValueError)  # as the former `DecodeFailure` was


def test_numbers_too_large_for_a_float_are_a_structure_error() -> None:
    data = wire.job()
    data["spec"]["deployment"] = {
        "kind": "NewEphemeralDeployment",
        "template": {"artifactId": "artifact_1", "options": {"evaluationThreshold": 10**400}},
    }
    with pytest.raises(StructureError, match=r"evaluation_threshold"):
        structure(data, Job)
    with pytest.raises(StructureError, match="too large"):
        structure(10**400, float)
