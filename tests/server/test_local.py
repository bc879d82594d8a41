"""LocalNexus as a whole: lifecycle, ports, shutdown, static files, arguments."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import TINY_PNG, Receiver, create_job, png_bytes, wait_for


async def refused(base_url: str) -> bool:
    async with httpx.AsyncClient(trust_env=False) as raw:
        try:
            await raw.get(base_url + "/_nexus/health", timeout=2)
        except httpx.ConnectError:
            return True
    return False


async def test_identity_and_repr() -> None:
    async with LocalNexus(project_id="proj_cli", secret_key="s3cret") as nexus:
        assert (nexus.project_id, nexus.secret_key) == ("proj_cli", "s3cret")
        assert nexus.deployment_id.startswith("deploy_")
        assert nexus.base_url.startswith("http://127.0.0.1:")
        assert "s3cret" not in repr(nexus)
        async with api_client(nexus) as client:
            assert (await client.get("jobs")).status_code == 200
    generated = LocalNexus()
    assert generated.project_id.startswith("proj_")
    assert len(generated.project_id) == 37
    assert len(generated.secret_key) >= 32
    assert generated.secret_key != LocalNexus().secret_key


async def test_lifecycle_rules_and_closed_port_after_exit(free_tcp_port: int) -> None:
    nexus = LocalNexus(port=free_tcp_port)
    with pytest.raises(RuntimeError, match="not running"):
        _ = nexus.base_url
    async with nexus:
        assert nexus.base_url == f"http://127.0.0.1:{free_tcp_port}"
        with pytest.raises(RuntimeError, match="only once"):
            await nexus.__aenter__()
    assert await refused(f"http://127.0.0.1:{free_tcp_port}")
    with pytest.raises(RuntimeError):
        _ = nexus.base_url


async def test_exit_cancels_running_jobs_promptly(receiver: Receiver) -> None:
    async with LocalNexus() as nexus, api_client(nexus) as client:
        dataset_id = nexus.seed_dataset([TINY_PNG] * 50)
        webhook_id = nexus.seed_webhook(receiver.url("/slow"))
        job = await create_job(client, dataset_id, [webhook_id], nexus.deployment_id)
        await wait_for(client, job["id"], "Predicted", 1)
        url = nexus.base_url
        started = anyio.current_time()
    assert anyio.current_time() - started < 3
    assert await refused(url)
    await receiver.wait_released("/slow")  # the runner's connections were closed too


async def test_outer_cancellation_still_shuts_down_cleanly(receiver: Receiver) -> None:
    started = anyio.current_time()
    with anyio.move_on_after(0.5) as scope:
        async with LocalNexus() as nexus, api_client(nexus) as client:
            url = nexus.base_url
            dataset_id = nexus.seed_dataset([TINY_PNG] * 20)
            webhook_id = nexus.seed_webhook(receiver.url("/slow"))
            await create_job(client, dataset_id, [webhook_id], nexus.deployment_id)
            nexus.inject_fault(method="GET", path="/jobs$", status=None, latency=30)
            await client.get("jobs")  # hangs until the scope is cancelled
    assert scope.cancelled_caught
    assert anyio.current_time() - started < 4
    assert await refused(url)


async def test_static_files(tmp_path: Path) -> None:
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "c.png").write_bytes(png_bytes())
    async with LocalNexus(static_dir=tmp_path) as nexus, httpx.AsyncClient(trust_env=False) as raw:
        url = nexus.static_url("a b/c.png")
        assert url == f"{nexus.base_url}/static/a%20b/c.png"
        response = await raw.get(url)  # no Secret-Key needed
        assert response.status_code == 200
        assert response.content == png_bytes()
        assert (await raw.get(nexus.static_url("../../etc/passwd"))).status_code == 404
    async with LocalNexus() as bare, httpx.AsyncClient(trust_env=False) as raw:
        assert (await raw.get(bare.static_url("x.png"))).status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 70000}, "port"),
        ({"job_concurrency": 0}, "job_concurrency"),
        ({"item_concurrency": 0}, "item_concurrency"),
        ({"gather_timeout": 0}, "gather_timeout"),
        ({"latency": -1}, "latency"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"project_id": "project-1"}, "project_id"),
        ({"secret_key": ""}, "secret_key"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalNexus(**kwargs)
