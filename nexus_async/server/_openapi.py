"""The OpenAPI 3.1 document of the batch API, served at ``/openapi.json``.

Written from ``spec/batch-api.md`` (the wire contract), not generated from the routes, so
that a fuzzer reading it (``.ci/run`` runs Schemathesis with it) checks the server
against the contract. It describes the 17 batch operations: their parameters, bodies,
the answers with every field the spec requires (``null`` only where the spec allows it),
the error statuses, and links from each create call to the calls on what it created,
for stateful testing. The server's own limits (name lengths, retry ranges) are stated
where they narrow the spec, so that valid input by the document is valid input here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ._parse import MAX_SAFE_INTEGER

__all__ = ["openapi_document"]

JSON = dict[str, Any]

_INT: JSON = {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER}
_MS: JSON = {"type": "integer", "minimum": 0, "maximum": MAX_SAFE_INTEGER}
_COUNT: JSON = {"type": "integer", "minimum": 0}
_NAME: JSON = {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": r"\S"}
_ID: JSON = {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": r"\S"}
_URL: JSON = {
    "type": "string",
    "maxLength": 2048,
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.\-]+(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
}
_COUNTERS = (
    "Gathered",
    "FailedGather",
    "Preprocessed",
    "FailedProcess",
    "Predicted",
    "FailedPredict",
    "Delivered",
    "FailedDeliver",
)


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, JSON], optional: dict[str, JSON] | None = None) -> JSON:
    """An object with these fields; other fields are allowed, as the spec says."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def _nullable(schema: JSON) -> JSON:
    return {"oneOf": [schema, {"type": "null"}]}


def _page(item: str) -> JSON:
    return _object(
        {
            "nextPage": _nullable({"type": "string"}),
            "prevPage": _nullable({"type": "string"}),
            "data": {"type": "array", "items": _ref(item)},
        }
    )


_SCHEMAS: dict[str, JSON] = {
    "Error": _object({"message": {"type": "string"}}, {"code": {"type": "string"}}),
    "Deleted": _object({"id": {"type": "string"}, "deleted": {"const": True}}),
    # ------------------------------------------------------------------ jobs
    "DeploymentTemplate": _object(
        {"artifactId": {"type": "string", "pattern": "^artifact_", "maxLength": 1024}},
        {
            "name": _NAME,
            "replicas": {"type": "integer", "minimum": 1, "maximum": 64},
            "region": _NAME,
            "versionTag": _NAME,
            "instanceId": _NAME,
            "options": _object(
                {},
                {
                    "evaluationStrategy": _NAME,
                    "evaluationThreshold": {"type": "number", "minimum": 0, "maximum": 1},
                    "evaluationGroup": {
                        "oneOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                },
            ),
        },
    ),
    "Deployment": {
        "oneOf": [
            _object({"kind": {"const": "ExistingDeployment"}, "deploymentId": _ID}),
            _object(
                {
                    "kind": {"const": "NewEphemeralDeployment"},
                    "template": _ref("DeploymentTemplate"),
                }
            ),
        ]
    },
    "Destination": _object({"kind": {"const": "Webhook"}, "webhookId": _ID}),
    "ResultDelivery": _object(
        {"destinations": {"type": "array", "minItems": 1, "items": _ref("Destination")}}
    ),
    "JobSpec": _object(
        {
            "datasetId": _ID,
            "deployment": _ref("Deployment"),
            "resultDelivery": _ref("ResultDelivery"),
            "startAtTime": _MS,
            "stopAtTime": _MS,
        }
    ),
    "JobSpecInput": _object(
        {
            "datasetId": _ID,
            "deployment": _ref("Deployment"),
            "resultDelivery": _ref("ResultDelivery"),
        },
        {"startAtTime": _MS, "stopAtTime": _MS},
    ),
    "JobItemStatus": _object(dict.fromkeys(_COUNTERS, _COUNT)),
    "JobStatus": _object(
        {
            "overview": {"type": "string"},  # clients must accept values they do not know
            "message": {"type": "string"},
            "updateDate": _MS,
            "reason": _nullable({"type": "string"}),
            "cancelledAt": _nullable(_MS),
            "items": _ref("JobItemStatus"),
        }
    ),
    "Job": _object(
        {
            "id": {"type": "string", "pattern": "^batchjob_"},
            "object": {"const": "batch_job"},
            "name": {"type": "string"},
            "projectId": {"type": "string", "pattern": "^proj_"},
            "spec": _ref("JobSpec"),
            "status": _ref("JobStatus"),
            "createDate": _MS,
            "updateDate": _MS,
        }
    ),
    "JobPage": _page("Job"),
    "JobLogEntry": _object(
        {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "createTime": _MS,
            "level": {"enum": ["Debug", "Info", "Warning", "Error"]},
            "item": {"type": "string"},
            "status": {"type": "string"},
            "timeMs": {"type": "number"},
            "reason": {"type": "string"},
        }
    ),
    "JobLogs": _object(
        {
            "id": {"type": "string", "pattern": "^batchjoblog_"},
            "object": {"const": "batch_job_log"},
            "projectId": {"type": "string"},
            "entries": {"type": "array", "items": _ref("JobLogEntry")},
        }
    ),
    "CreateJob": _object({"name": _NAME, "spec": _ref("JobSpecInput")}),
    "PatchJob": _object({"spec": _object({"stopAtTime": _MS})}),
    # ------------------------------------------------------------------ datasets
    "UploadUrl": _object(
        {
            "method": {"type": "string"},
            "url": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "expiresAtTime": _MS,
        }
    ),
    "DatasetSource": _object(
        {
            "kind": {"const": "UploadedNewlineDelimitedJsonFile"},
            "sizeBytes": _COUNT,
            "crc32c": {"type": "string"},
            "uploadUrl": _ref("UploadUrl"),
        }
    ),
    "DatasetStatus": _object(
        {
            "overview": {
                "enum": [
                    "Waiting",
                    "Uploading",
                    "Uploaded",
                    "Processing",
                    "Processed",
                    "FailedUpload",
                    "FailedProcessing",
                ]
            },
            "message": {"type": "string"},
            "updateTime": _MS,
            "itemCount": _COUNT,
            "source": _ref("DatasetSource"),
        }
    ),
    "Dataset": _object(
        {
            "id": {"type": "string", "pattern": "^dataset_"},
            "object": {"const": "dataset"},
            "name": {"type": "string"},
            "projectId": {"type": "string", "pattern": "^proj_"},
            "expiryTime": _MS,
            "createDate": _MS,
            "updateDate": _MS,
            "status": _ref("DatasetStatus"),
        }
    ),
    "DatasetPage": _page("Dataset"),
    "CreateDataset": _object(
        {
            "name": _NAME,
            "spec": _object(
                {
                    "source": _object(
                        {
                            "kind": {"const": "UploadedNewlineDelimitedJsonFile"},
                            "sizeBytes": {"type": "integer", "minimum": 0, "maximum": 2**28},
                            "crc32c": {
                                "type": "string",
                                "pattern": "^[A-Za-z0-9+/]{6}==$",
                            },
                        }
                    )
                }
            ),
        }
    ),
    # ------------------------------------------------------------------ webhooks
    "Retries": _object(
        {},
        {
            "maxRetries": {"type": "integer", "minimum": 0, "maximum": 20},
            "maxBackoffMs": {"type": "integer", "minimum": 0, "maximum": 3_600_000},
        },
    ),
    "WebhookSecret": _object(
        {
            "contents": {
                "description": "base64 of 24..64 random bytes (32 recommended)",
                "type": "string",
                "pattern": (
                    "^(whsec_)?([A-Za-z0-9+/]{4}){8,21}([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
                ),
            }
        }
    ),
    "Webhook": _object(
        {
            "id": {"type": "string", "pattern": "^webhook_"},
            "object": {"const": "webhook"},
            "projectId": {"type": "string", "pattern": "^proj_"},
            "name": {"type": "string"},
            "endpoint": {"type": "string"},
            "retries": _object(
                {"maxRetries": _COUNT, "maxBackoffMs": _COUNT},
            ),
            "createDate": _MS,
            "updateDate": _MS,
        }
    ),
    "CreatedWebhook": {
        "description": "A webhook; ``secret`` is present once, when the server generated it.",
        "allOf": [_ref("Webhook"), _object({}, {"secret": _ref("WebhookSecret")})],
    },
    "WebhookPage": _page("Webhook"),
    "CreateWebhook": _object(
        {
            "name": _NAME,
            "spec": _object(
                {"endpoint": _URL}, {"secret": _ref("WebhookSecret"), "retries": _ref("Retries")}
            ),
        },
    ),
    "UpdateWebhook": _object(
        {"spec": _object({}, {"endpoint": _URL, "retries": _ref("Retries")})},
        {"name": _NAME},
    ),
    "WebhookTestResult": _object(
        {
            "status": {"enum": ["Succeeded", "Failed"]},
            "responseCode": _COUNT,
            "latencyMs": _COUNT,
            "attemptCount": _COUNT,
            "body": {"type": "string"},
            "reason": {"type": "string"},
        }
    ),
}


def _error(description: str) -> JSON:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


_ERRORS = {
    "400": "a malformed field, query parameter or body",
    "401": "no Secret-Key",
    "403": "a Secret-Key that is not the project's",
    "404": "an unknown resource",
    "409": "a resource in a state that forbids the call",
    "413": "a body larger than the server accepts",
    "503": "the job runner is not running",
}


def _operation(
    operation_id: str,
    summary: str,
    answer: str,
    *,
    errors: str = "400 401 403 404",
    body: str | None = None,
    query: list[JSON] | None = None,
    links: dict[str, JSON] | None = None,
) -> JSON:
    codes = errors.split() + (["413"] if body is not None else [])
    responses: JSON = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": _ref(answer)}},
            **({"links": links} if links else {}),
        },
        **{code: _error(_ERRORS[code]) for code in codes},
    }
    operation: JSON = {"operationId": operation_id, "summary": summary, "responses": responses}
    if query:
        operation["parameters"] = query
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


def _path_param(name: str, prefix: str) -> JSON:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{prefix}"},
    }


def _query(name: str, schema: JSON) -> JSON:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _links(target_ids: dict[str, str], parameter: str) -> dict[str, JSON]:
    return {
        name: {"operationId": operation, "parameters": {parameter: "$response.body#/id"}}
        for name, operation in target_ids.items()
    }


_LIST = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
    _query("page", {"type": "string"}),
]
_LOGS = [
    _query("beforeTime", _MS),
    _query("afterTime", _MS),
    _query("minLevel", {"enum": ["Debug", "Info", "Warning", "Error"]}),
    _query("maxEntries", {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER}),
]


@cache
def openapi_document() -> JSON:
    """The document (built once; callers must not change it)."""
    project = [_path_param("projectId", "proj_")]
    job, dataset, webhook = (
        _path_param("jobId", "batchjob_"),
        _path_param("datasetId", "dataset_"),
        _path_param("webhookId", "webhook_"),
    )
    base = "/projects/{projectId}/batch"
    job_links = _links(
        {
            "GetJob": "getJob",
            "CancelJob": "cancelJob",
            "GetJobLogs": "getJobLogs",
            "DeleteJob": "deleteJob",
        },
        "jobId",
    )
    dataset_links = _links(
        {"GetDataset": "getDataset", "DeleteDataset": "deleteDataset"}, "datasetId"
    )
    webhook_links = _links(
        {
            "GetWebhook": "getWebhook",
            "UpdateWebhook": "updateWebhook",
            "UpdateWebhookSecret": "updateWebhookSecret",
            "TestWebhook": "testWebhook",
            "DeleteWebhook": "deleteWebhook",
        },
        "webhookId",
    )
    paths: JSON = {
        f"{base}/jobs": {
            "parameters": project,
            "post": _operation(
                "createJob",
                "Create a batch job",
                "Job",
                errors="400 401 403 404 409 503",
                body="CreateJob",
                links=job_links,
            ),
            "get": _operation("listJobs", "List batch jobs, newest first", "JobPage", query=_LIST),
        },
        f"{base}/jobs/{{jobId}}": {
            "parameters": [*project, job],
            "get": _operation("getJob", "Get a batch job", "Job"),
            "patch": _operation(
                "cancelJob",
                "Cancel (stopAtTime <= now) or move the stop time",
                "Job",
                body="PatchJob",
            ),
            "delete": _operation("deleteJob", "Delete a batch job (cancelling it)", "Deleted"),
        },
        f"{base}/jobs/{{jobId}}/logs": {
            "parameters": [*project, job],
            "get": _operation("getJobLogs", "Log entries, newest first", "JobLogs", query=_LOGS),
        },
        f"{base}/datasets": {
            "parameters": project,
            "post": _operation(
                "createDataset",
                "Create a dataset to upload",
                "Dataset",
                body="CreateDataset",
                links=dataset_links,
            ),
            "get": _operation("listDatasets", "List datasets", "DatasetPage", query=_LIST),
        },
        f"{base}/datasets/{{datasetId}}": {
            "parameters": [*project, dataset],
            "get": _operation("getDataset", "Get a dataset", "Dataset"),
            "delete": _operation("deleteDataset", "Delete a dataset", "Deleted"),
        },
        f"{base}/webhooks": {
            "parameters": project,
            "post": _operation(
                "createWebhook",
                "Create a webhook",
                "CreatedWebhook",
                body="CreateWebhook",
                links=webhook_links,
            ),
            "get": _operation("listWebhooks", "List webhooks", "WebhookPage", query=_LIST),
        },
        f"{base}/webhooks/{{webhookId}}": {
            "parameters": [*project, webhook],
            "get": _operation("getWebhook", "Get a webhook", "Webhook"),
            "patch": _operation(
                "updateWebhook",
                "Change a webhook's name, endpoint or retries",
                "Webhook",
                body="UpdateWebhook",
            ),
            "delete": _operation("deleteWebhook", "Delete a webhook", "Deleted"),
        },
        f"{base}/webhooks/{{webhookId}}/secret": {
            "parameters": [*project, webhook],
            "put": _operation(
                "updateWebhookSecret", "Replace a webhook's secret", "Webhook", body="WebhookSecret"
            ),
        },
        f"{base}/webhooks/{{webhookId}}:test": {
            "parameters": [*project, webhook],
            "post": _operation(
                "testWebhook",
                "Send one signed sample delivery",
                "WebhookTestResult",
                errors="400 401 403 404 503",
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Datature Nexus batch API (local server)",
            "version": "1.0.0",
            "description": "Batch jobs, datasets and webhooks, as the nexus-async local server"
            " implements them; see the nexus_async.server package docstring for the"
            " decisions where the contract is silent.",
        },
        "security": [{"SecretKey": []}],
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "SecretKey": {"type": "apiKey", "in": "header", "name": "Secret-Key"}
            },
        },
    }
