"""Wire JSON of datasets, webhooks and deliveries, shaped exactly as the spec shows it."""

from __future__ import annotations

import copy
import json
from typing import Any

from nexus_async import signing

UPLOAD_URL = "https://storage.test/bucket/dataset_1.ndjson?X-Goog-Signature=abc123"

DATASET: dict[str, Any] = {
    "id": "dataset_652ef566-af5c-4d52-b1e4-ec8ec6dc4b8e",
    "object": "dataset",
    "name": "rbc",
    "projectId": "proj_ca5fe71e7592bbcf7705ea36e4f29ed4",
    "expiryTime": 1724561116000,
    "createDate": 1723697118174,
    "updateDate": 1723697121774,
    "status": {
        "overview": "Waiting",
        "message": "Waiting for upload",
        "updateTime": 1723697121735,
        "itemCount": 0,
        "source": {
            "kind": "UploadedNewlineDelimitedJsonFile",
            "uploadUrl": {
                "method": "PUT",
                "url": UPLOAD_URL,
                "headers": {
                    "Content-Type": "application/x-ndjson",
                    "x-goog-hash": "crc32c=AAAAAA==",
                },
                "expiresAtTime": 1723740318174,
            },
        },
    },
}

WEBHOOK: dict[str, Any] = {
    "id": "webhook_f7d8aec2-7e2b-4d2c-a103-c8dd575c29c7",
    "object": "webhook",
    "projectId": "proj_ca5fe71e7592bbcf7705ea36e4f29ed4",
    "name": "aws-lambda",
    "endpoint": "https://lambda-url.ap-southeast-1.on.aws/",
    "retries": {"maxRetries": 3, "maxBackoffMs": 15000},
    "createDate": 1723633671620,
    "updateDate": 1723736909980,
}

WEBHOOK_TEST: dict[str, Any] = {
    "status": "Succeeded",
    "responseCode": 204,
    "latencyMs": 648,
    "attemptCount": 1,
    "body": "",
    "reason": "",
}

DELIVERY: dict[str, Any] = {
    "jobId": "batchjob_4e5566d0-6538-441a-9fa5-f3495516646a",
    "projectId": "proj_ca5fe71e7592bbcf7705ea36e4f29ed4",
    "item": {"kind": "Image", "url": "https://my-endpoint.url/blood_cell/36.jpg"},
    "deliveryId": "delivery_9b2c5d0e-3d1f-4b8e-9a51-0d7f3f4f0c11",
    "createTime": 1723080300011,
    "predictions": [
        {
            "annotationId": 0,
            "tag": {"id": 1, "name": "RBC"},
            "confidence": 0.87,
            "boundType": "rectangle",
            "bound": [[0.25, 0.25], [0.25, 0.75], [0.75, 0.75], [0.75, 0.25]],
        }
    ],
}


def dataset(overview: str = "Waiting", **status: Any) -> dict[str, Any]:
    """A deep copy of DATASET with its status overview (and other status keys) replaced."""
    data = copy.deepcopy(DATASET)
    data["status"].update(overview=overview, **status)
    return data


def page(*items: dict[str, Any], next_page: str | None = None) -> dict[str, Any]:
    return {"nextPage": next_page, "prevPage": None, "data": list(items)}


def delivery(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(DELIVERY)
    data.update(changes)
    return data


def signed(
    secret: str, body: dict[str, Any] | bytes, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A delivery body and the headers the API would send with it."""
    import time

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ident = json.loads(raw)["deliveryId"] if not isinstance(body, bytes) else "delivery_raw"
    when = int(time.time()) if timestamp is None else timestamp
    return raw, {
        "webhook-id": ident,
        "webhook-timestamp": str(when),
        "webhook-signature": signing.sign(secret, ident, when, raw),
        "content-type": "application/json",
    }
