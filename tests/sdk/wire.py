"""Wire JSON shaped exactly as the spec shows it, for decoding tests."""

from __future__ import annotations

import copy
from typing import Any

ITEMS = {
    "Gathered": 50,
    "FailedGather": 1,
    "Preprocessed": 48,
    "FailedProcess": 1,
    "Predicted": 47,
    "FailedPredict": 1,
    "Delivered": 46,
    "FailedDeliver": 1,
}

JOB: dict[str, Any] = {
    "id": "batchjob_4e5566d0-6538-441a-9fa5-f3495516646a",
    "object": "batch_job",
    "name": "my-batch-job-08-15",
    "projectId": "proj_ca5fe71e7592bbcf7705ea36e4f29ed4",
    "spec": {
        "datasetId": "dataset_652ef566-af5c-4d52-b1e4-ec8ec6dc4b8e",
        "deployment": {
            "kind": "ExistingDeployment",
            "deploymentId": "deploy_3286bd71-9a8b-42bb-8ba6-c07549b81367",
        },
        "resultDelivery": {
            "destinations": [
                {"kind": "Webhook", "webhookId": "webhook_ed981529-0160-4704-8794-e7702a8de470"}
            ]
        },
        "startAtTime": 1723734419985,
        "stopAtTime": 1723993619985,
    },
    "status": {
        "overview": "Reached",
        "message": "Finished",
        "updateDate": 1723734509417,
        "reason": None,
        "cancelledAt": None,
        "items": ITEMS,
    },
    "createDate": 1723734419985,
    "updateDate": 1723734509434,
}

EPHEMERAL_DEPLOYMENT: dict[str, Any] = {
    "kind": "NewEphemeralDeployment",
    "template": {
        "name": "tmp",
        "artifactId": "artifact_1",
        "replicas": 2,
        "region": "us-east",
        "versionTag": "v1",
        "instanceId": "x1",
        "options": {
            "evaluationStrategy": "score",
            "evaluationThreshold": 0.5,
            "evaluationGroup": ["a", "b"],
        },
    },
}

LOG_ENTRY: dict[str, Any] = {
    "id": "1e0ad7896a4aa2dd47eda727",
    "kind": "ItemPredicted",
    "createTime": 1723080300011,
    "level": "Info",
    "item": "https://my-endpoint.url/blood_cell/36.jpg",
    "status": "Delivered",
    "timeMs": 9819.226,
    "reason": "",
}

JOB_LOGS: dict[str, Any] = {
    "id": "batchjoblog_3d561cfa-9a53-4eb3-81c1-4193ae27f4fc",
    "object": "batch_job_log",
    "projectId": "proj_ca5fe71e7592bbcf7705ea36e4f29ed4",
    "entries": [LOG_ENTRY],
}


def job(**changes: Any) -> dict[str, Any]:
    """A deep copy of JOB with top-level keys replaced."""
    data = copy.deepcopy(JOB)
    data.update(changes)
    return data


def page(*jobs: dict[str, Any], next_page: str | None = None) -> dict[str, Any]:
    return {"nextPage": next_page, "prevPage": None, "data": list(jobs)}
