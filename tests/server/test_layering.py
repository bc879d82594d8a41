"""The server's layers: domain errors mapped to statuses by type, one settings object,
one naming rule."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

import attrs
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import nexus_async.server as server
from nexus_async.server import LocalNexus, NexusCore, ServerSettings, _errors, _state, create_app
from nexus_async.server._app import STATUS

# Written out here, not read from the app: the test pins the contract.
EXPECTED: dict[type[_errors.DomainError], tuple[int, str]] = {
    _errors.Invalid: (400, "bad_request"),
    _errors.Unauthenticated: (401, "unauthenticated"),
    _errors.Forbidden: (403, "forbidden"),
    _errors.NotFound: (404, "not_found"),
    _errors.TimedOut: (408, "request_timeout"),
    _errors.Conflict: (409, "conflict"),
    _errors.TooLarge: (413, "too_large"),
    _errors.Unavailable: (503, "unavailable"),
}
# Messages that the old text matching would have turned into another status.
REWORDED = ["project proj_x already exists", "unknown job 'batchjob_1'", "not found", "ok"]


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_domain_error_type_has_a_status() -> None:
    assert _all_subclasses(_errors.DomainError) == set(EXPECTED)
    assert {cls: status for cls, (status, _) in EXPECTED.items()} == STATUS


@pytest.mark.parametrize("message", REWORDED)
@pytest.mark.parametrize("error", list(EXPECTED))
async def test_status_follows_the_error_type_not_its_message(
    error: type[_errors.DomainError], message: str
) -> None:
    app = create_app()

    async def boom(request: Request) -> Response:
        raise error(message)

    app.router.routes.insert(0, Route("/boom", boom))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://nexus"
    ) as client:
        response = await client.get("/boom")
    status, code = EXPECTED[error]
    assert response.status_code == status
    assert response.json() == {"message": message, "code": code}


async def test_a_domain_error_may_carry_a_more_specific_code() -> None:
    app = create_app()

    async def boom(request: Request) -> Response:
        raise _errors.Conflict("busy", code="dataset_busy")

    app.router.routes.insert(0, Route("/boom", boom))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://nexus"
    ) as client:
        response = await client.get("/boom")
    assert (response.status_code, response.json()["code"]) == (409, "dataset_busy")


def test_state_knows_neither_http_nor_cancel_scopes() -> None:
    source = Path(_state.__file__).read_text()
    assert "anyio" not in source
    assert "starlette" not in source
    assert "status_code" not in source
    job_fields = set(_state.Job.__dataclass_fields__)
    assert not {name for name in job_fields if "scope" in name}


def test_settings_are_frozen_and_shared() -> None:
    settings = ServerSettings(latency=0.25, job_concurrency=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.latency = 1.0  # type: ignore[misc]
    core = NexusCore(settings)
    assert core.settings is settings
    assert create_app(settings).state.nexus.settings is settings
    local = LocalNexus(settings, item_concurrency=3)
    assert local.settings == attrs.evolve(settings, item_concurrency=3)
    assert local.settings.latency == 0.25


def test_unknown_override_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="lantency"):
        LocalNexus(lantency=1)
    with pytest.raises(TypeError, match="settings"):
        NexusCore({"latency": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("port", -1),
        ("port", 65536),
        ("port", "80"),
        ("host", ""),
        ("latency", float("nan")),
        ("latency", float("inf")),
        ("latency", -0.1),
        ("job_concurrency", 0),
        ("item_concurrency", True),
        ("delivery_timeout", 0),
        ("gather_timeout", "1"),
        ("max_item_bytes", 0),
        ("max_body_bytes", 1.5),
        ("max_upload_bytes", -3),
        ("max_image_pixels", 0),
        ("project_id", "project-1"),
        ("secret_key", "has space"),
        ("static_dir", "/definitely/not/here"),
        ("predictor", object()),
        ("allow_private_addresses", "no"),
        ("allowed_hosts", "127.0.0.1"),
        ("allowed_hosts", [""]),
        ("body_timeout", 0),
    ],
)
def test_bad_settings_name_the_option(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"`{option}`"):
        ServerSettings(**{option: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"`{option}`"):
        LocalNexus(**{option: value})


def test_command_line_flags_come_from_the_settings(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    ServerSettings.add_arguments(parser)
    flags = set(vars(parser.parse_args([])))
    assert flags == {field.name for field in attrs.fields(ServerSettings)} - {"predictor", "clock"}
    flags_given = ["--port", "8080", "--latency", "0.5", "--static-dir", str(tmp_path)]
    flags_given += ["--no-allow-private-addresses", "--allowed-hosts", "127.0.0.1, Example.com"]
    args = parser.parse_args(flags_given)
    settings = ServerSettings.from_arguments(args)
    assert settings == ServerSettings(
        port=8080,
        latency=0.5,
        static_dir=tmp_path,
        allow_private_addresses=False,
        allowed_hosts=("127.0.0.1", "example.com"),
    )
    assert ServerSettings.from_arguments(parser.parse_args([])) == ServerSettings()
    with pytest.raises(ValueError, match="`item_concurrency`"):
        ServerSettings.from_arguments(parser.parse_args(["--item-concurrency", "0"]))


def test_one_naming_rule() -> None:
    modules = [info.name for info in pkgutil.iter_modules(server.__path__)]
    assert modules
    assert all(name.startswith("_") for name in modules), modules
    assert server.__all__ == sorted(server.__all__)
    for name in server.__all__:
        assert getattr(server, name).__module__ == "nexus_async.server", name
    for name in modules:  # every private module declares what it offers the others
        module = importlib.import_module(f"nexus_async.server.{name}")
        assert hasattr(module, "__all__"), name
