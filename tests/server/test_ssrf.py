"""Where the server may connect (issue #13, item 4).

With ``allow_private_addresses=False`` loopback and link-local destinations are refused
before any connection is opened. The tests only ever point at loopback (a receiver that
counts what reaches it) and at link-local literals, which are refused without a packet.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from nexus_async.server import LocalNexus

from .conftest import api_client
from .helpers import Receiver, all_logs, create_job, png_bytes, wait_terminal

LINK_LOCAL = ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/hook"]


def _loopback(receiver: Receiver, path: str) -> list[str]:
    port = receiver.base_url.rsplit(":", 1)[1]
    return [
        receiver.url(path),
        f"http://localhost:{port}{path}",
        f"http://[::ffff:127.0.0.1]:{port}{path}",
    ]


async def test_webhook_test_refuses_private_destinations(receiver: Receiver) -> None:
    async with LocalNexus(allow_private_addresses=False) as nexus, api_client(nexus) as client:
        for endpoint in [*_loopback(receiver, "/ok"), *LINK_LOCAL]:
            webhook_id = nexus.seed_webhook(endpoint, max_retries=5)
            with anyio.fail_after(5):
                result = (await client.post(f"webhooks/{webhook_id}:test")).json()
            assert result["status"] == "Failed", endpoint
            assert (result["responseCode"], result["attemptCount"]) == (0, 0), result
            assert result["body"] == ""
            assert "destination refused" in result["reason"], result
            assert "not a public address" in result["reason"], result
    assert receiver.arrivals["/ok"] == 0


async def test_item_urls_on_private_addresses_are_refused(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.images["a.png"] = png_bytes()
    (tmp_path / "a.png").write_bytes(png_bytes())
    async with (
        LocalNexus(allow_private_addresses=False, static_dir=tmp_path) as nexus,
        api_client(nexus) as client,
    ):
        items = [*_loopback(receiver, "/img/a.png"), nexus.static_url("a.png"), *LINK_LOCAL]
        dataset_id = nexus.seed_dataset(items)
        webhook_id = nexus.seed_webhook(receiver.url("/ok"))
        job = await create_job(client, dataset_id, [webhook_id], nexus.deployment_id)
        final = await wait_terminal(client, job["id"])
        assert final["status"]["items"]["FailedGather"] == len(items)
        reasons = {
            entry["item"]: entry["reason"]
            for entry in await all_logs(client, job["id"])
            if entry["kind"] == "ItemFailed"
        }
    assert set(reasons) == set(items)
    assert all(reason.startswith("destination refused:") for reason in reasons.values())
    assert sum(receiver.arrivals.values()) == 0  # nothing reached the loopback receiver


async def test_private_addresses_are_allowed_by_default(
    client: httpx.AsyncClient, nexus: LocalNexus, receiver: Receiver
) -> None:
    assert nexus.settings.allow_private_addresses is True
    webhook_id = nexus.seed_webhook(receiver.url("/ok"))
    result = (await client.post(f"webhooks/{webhook_id}:test")).json()
    assert (result["status"], result["attemptCount"], result["body"]) == ("Succeeded", 1, "")


@pytest.mark.parametrize("allow", [True, False])
async def test_public_destinations_are_pinned_to_the_checked_address(allow: bool) -> None:
    from nexus_async.server._egress import target_of

    target = await target_of("https://93.184.215.14:8443/a?b=1", allow_private=allow)
    if allow:
        assert target.url == "https://93.184.215.14:8443/a?b=1"
        assert target.headers == {}
    else:
        assert str(target.url) == "https://93.184.215.14:8443/a?b=1"
        assert target.headers == {"host": "93.184.215.14:8443"}
        assert target.extensions == {"sni_hostname": "93.184.215.14"}


async def test_allowed_hosts_refuses_every_other_host_before_any_lookup(
    receiver: Receiver,
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    async with (
        LocalNexus(allowed_hosts=["127.0.0.1"]) as nexus,
        api_client(nexus) as client,
    ):
        allowed = nexus.seed_webhook(receiver.url("/ok"))
        assert (await client.post(f"webhooks/{allowed}:test")).json()["status"] == "Succeeded"
        # A name that would need DNS, and another spelling of loopback.
        for endpoint in ("http://nexus-fuzz.invalid/hook", f"http://localhost:{port}/ok"):
            refused = nexus.seed_webhook(endpoint)
            result = (await client.post(f"webhooks/{refused}:test")).json()
            assert result["attemptCount"] == 0
            assert "not in allowed_hosts" in result["reason"], result
    assert receiver.arrivals["/ok"] == 1
