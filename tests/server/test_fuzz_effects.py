"""Fuzzed bodies never answer 5xx after an effect (issue #13, item 1).

A 5xx invites a client to retry, so a request either changes something and answers 2xx,
or answers 4xx and changes nothing. One server per backend serves every example (the
fixtures are module-scoped, as hypothesis needs), and each example checks the list of
the collection it writes to before and after.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import TINY_PNG, dataset_body, job_body, ndjson, now_ms

JSON = dict[str, Any]
LONE = "\ud800"


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def shared(anyio_backend: str) -> AsyncIterator[LocalNexus]:
    async with LocalNexus() as server:
        yield server


def _raw(body: JSON) -> bytes:
    return json.dumps(body, ensure_ascii=True).encode()


def _webhook(endpoint: str = "http://127.0.0.1:9/hook", name: str = "w") -> JSON:
    return {"name": name, "spec": {"endpoint": endpoint}}


def _ephemeral_job(dataset_id: str, webhook_id: str, template_name: str) -> JSON:
    body = job_body(dataset_id, [webhook_id], "unused")
    body["spec"]["deployment"] = {
        "kind": "NewEphemeralDeployment",
        "template": {"artifactId": "artifact_1", "name": template_name},
    }
    return body


_ODD_STRINGS = st.sampled_from(
    [LONE, "\udfff", f"ok{LONE}", "\x00", "\u202e", "x" * 2000, "", " ", "http://[::1"]
)
_ODD_NUMBERS = st.sampled_from(
    [2**53, 2**53 + 1, -(2**63), 10**400, 1e300, -1, 0, 0.5, 1e-300, float("nan")]
)
# Odd strings and numbers make two thirds of the leaves: they are what the server must
# refuse before storing.
_LEAVES = st.one_of(
    _ODD_STRINGS,
    _ODD_NUMBERS,
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


# Bodies with placeholder ids; each example swaps in the ids of what it seeded. Every
# draw happens in the strategy, before the test's coroutine starts, as anyio's pytest
# plugin needs.
_DATASET, _WEBHOOK, _DEPLOYMENT = "{dataset}", "{webhook}", "{deployment}"
_TEMPLATES: list[tuple[str, str, str, JSON]] = [
    (
        "POST",
        "jobs",
        "jobs",
        job_body(_DATASET, [_WEBHOOK], _DEPLOYMENT, startAtTime=now_ms() + 3_600_000),
    ),
    ("POST", "jobs", "jobs", _ephemeral_job(_DATASET, _WEBHOOK, "t")),
    ("POST", "datasets", "datasets", dataset_body(ndjson([TINY_PNG]))),
    ("POST", "webhooks", "webhooks", _webhook()),
    ("PATCH", f"webhooks/{_WEBHOOK}", "webhooks", {"name": "n", "spec": {"retries": {}}}),
    ("PUT", f"webhooks/{_WEBHOOK}/secret", "webhooks", {"contents": "x"}),
]


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found += _paths(value, (*prefix, key))
    return found


@st.composite
def _cases(draw: st.DrawFn) -> tuple[str, str, str, JSON]:
    """A template with one field (anywhere in it) replaced by an odd value."""
    method, path, collection, template = draw(st.sampled_from(_TEMPLATES))
    where = draw(st.sampled_from(_paths(template)))
    body: JSON = json.loads(json.dumps(template))
    parent = body
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = draw(_VALUES)
    return method, path, collection, body


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=_cases())
async def test_fuzzed_bodies_never_answer_5xx_after_an_effect(
    shared: LocalNexus, case: tuple[str, str, str, JSON]
) -> None:
    ids = {
        _DATASET: shared.seed_dataset([TINY_PNG]),
        _WEBHOOK: shared.seed_webhook("http://127.0.0.1:9/unused"),
        _DEPLOYMENT: shared.deployment_id,
    }
    method, path, collection, body = case
    for placeholder, ident in ids.items():
        path = path.replace(placeholder, ident)
    raw = _raw(body)
    for placeholder, ident in ids.items():
        raw = raw.replace(f'"{placeholder}"'.encode(), f'"{ident}"'.encode())
    async with api_client(shared) as client:
        before = (await client.get(collection)).json()
        response = await client.request(method, path, content=raw)
        after = await client.get(collection)
    assert after.status_code == 200, after.text
    if response.status_code >= 500:
        assert after.json() == before, "a 5xx followed an effect"
    assert response.status_code < 500, (method, path, raw, response.text)
