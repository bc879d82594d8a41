"""Secrets never leak: not in reprs, exception messages, logs at any level, or CLI output.

One scan over a run that touches everything: a local server (in a blocking portal,
on each backend) with a recognisable project key; webhooks created with a given, a
generated and a rotated secret; retries, every error class the SDK raises (each
produced for real, most of them by requests that carry a secret); a receiver
rejecting deliveries; and the `nexus-async` command's every API command, including
its failures. Every repr, `str()` and `repr()` of the exceptions, every log record
(DEBUG and up, every logger: ours, the server's, httpx's) and everything the CLI
printed is searched for each secret (for any 12-character piece of its start or end,
so a truncated echo is caught too).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets as random_secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from nexus_async import (
    AsyncClient,
    DeliveryReceiver,
    Job,
    RetryEvent,
    RetryPolicy,
    WebhookSecret,
    WebhookSpec,
    errors,
    signing,
    structure,
)
from nexus_async.cli import main
from nexus_async.receiver import verify_delivery
from nexus_async.server import LocalNexus

from ..sdk import wire_batch
from ..support import DEAD_ENDPOINT, FAST_RETRY, png_data_url, raw_client
from .support import DeadPort

NO_RETRIES: dict[str, Any] = {"retries": {"max_retries": 0}}  # deliveries to nowhere fail fast


def _pieces(secret: str) -> list[str]:
    return [secret[:12], secret[-12:]]


class Evidence:
    """Everything that must not contain a secret, and the errors seen."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []

    def add(self, where: str, *objects: object) -> None:
        for obj in objects:
            self.texts.append((where, repr(obj)))
            self.texts.append((where, str(obj)))

    async def expect(
        self, cls: type[BaseException], call: Callable[[], Awaitable[object]]
    ) -> BaseException:
        try:
            await call()
        except cls as exc:
            self.errors.append(exc)
            self.add(f"{type(exc).__name__}", exc)
            return exc
        raise AssertionError(f"expected {cls.__name__}")


async def _sdk_run(
    nexus: LocalNexus, key: str, given: str, rotated: str
) -> tuple[Evidence, str, str]:
    ev = Evidence()
    ev.add("server", nexus)
    async with AsyncClient(key, base_url=nexus.base_url, retry=FAST_RETRY) as client:
        project = client.get_project(nexus.project_id)
        batch = project.batch
        ev.add("client", client, client.diagnostics(), project, batch)
        ev.add("resources", batch.jobs, batch.datasets, batch.webhooks)

        # Webhooks: a given secret, a generated one, a rotation; with a retry on the way.
        nexus.inject_fault(method="GET", path="/batch/webhooks", status=503, times=1)
        nexus.inject_fault(method="POST", path="/batch/webhooks$", status=503, times=1)
        await ev.expect(  # a create is not retried after a 5xx
            errors.ServerError,
            lambda: batch.webhooks.create(
                "given", {"endpoint": DEAD_ENDPOINT, "secret": {"contents": given}, **NO_RETRIES}
            ),
        )
        hook = await batch.webhooks.create(
            "given", {"endpoint": DEAD_ENDPOINT, "secret": {"contents": given}, **NO_RETRIES}
        )
        generated_hook = await batch.webhooks.create(
            "generated", {"endpoint": DEAD_ENDPOINT, **NO_RETRIES}
        )
        generated = generated_hook.secret
        spec = WebhookSpec(endpoint=DEAD_ENDPOINT, secret=WebhookSecret(given))
        ev.add("webhooks", hook, generated_hook, spec, spec.secret, await batch.webhooks.list())
        await batch.webhooks.update_secret(hook.id, rotated)
        ev.add("webhook", await batch.webhooks.get(hook.id), await batch.webhooks.test(hook.id))

        # Status errors, each from a request that carries a secret in its body.
        for status, cls in [
            (400, errors.BadRequestError),
            (409, errors.ConflictError),
            (413, errors.PayloadTooLargeError),
            (418, errors.APIStatusError),
            (500, errors.ServerError),
        ]:
            nexus.inject_fault(method="PUT", path="/secret$", status=status, times=None)
            await ev.expect(cls, lambda: batch.webhooks.update_secret(hook.id, rotated))
            nexus.clear_faults()
        # A long Retry-After pauses the whole client: use one of its own.
        async with AsyncClient(key, base_url=nexus.base_url, retry=FAST_RETRY) as limited:
            hooks = limited.get_project(nexus.project_id).batch.webhooks
            nexus.inject_fault(method="PUT", path="/secret$", status=429, retry_after=600)
            await ev.expect(errors.RateLimitedError, lambda: hooks.update_secret(hook.id, rotated))
        await ev.expect(errors.NotFoundError, lambda: batch.jobs.get("batchjob_missing"))

        # Bad input that includes a secret: the message must not echo it.
        await ev.expect(
            errors.ValidationError,
            lambda: batch.webhooks.create(
                "bad", {"endpoint": DEAD_ENDPOINT, "secret": {"contents": given + "!"}}
            ),
        )
        await ev.expect(
            errors.ValidationError,
            lambda: batch.webhooks.update_secret(hook.id, given[:20]),
        )

        # Jobs: waiting errors and log paging.
        dataset_id = nexus.seed_dataset([png_data_url()] * 2)
        options = {
            "dataset_id": dataset_id,
            "webhook_id": hook.id,
            "deployment_id": nexus.deployment_id,
        }
        later = await batch.jobs.create("later", {**options, "start_at_time": 10**13 - 1})
        await ev.expect(
            errors.WaitTimeoutError,
            lambda: batch.jobs.wait_until_done(later.id, interval=0.05, timeout=0.2),
        )
        await batch.jobs.cancel(later.id)
        await ev.expect(
            errors.JobStateError, lambda: batch.jobs.wait_until_done(later.id, interval=0.05)
        )
        nexus.seed_logs(later.id, 1000, per_ms=1000, start_time=1_000)

        async def all_logs() -> None:
            async for _ in batch.jobs.get_all_logs(later.id, {"before_time": 1_000}):
                pass

        await ev.expect(errors.LogPagingError, all_logs)
        job = await batch.jobs.create("runs", options)
        ev.add("job", await batch.jobs.wait_until_done(job.id, interval=0.05, timeout=20))
        ev.add("logs", await batch.jobs.get_logs(job.id))

        # Datasets: a bad item, a processing failure, a wait that runs out.
        await ev.expect(
            errors.DatasetFileError,
            lambda: batch.datasets.create_from_items("x", [{"kind": "Video", "url": "a"}]),
        )
        failing = await batch.datasets.create_from_items("ftp", ["ftp://example.test/1.png"])
        ev.add("dataset", failing)
        await ev.expect(
            errors.DatasetFailedError,
            lambda: batch.datasets.wait_until_done(failing.id, interval=0.05, timeout=10),
        )
        async with raw_client() as raw:
            pending = await raw.post(
                f"{nexus.base_url}/projects/{nexus.project_id}/batch/datasets",
                headers={"Secret-Key": key},
                json={
                    "name": "never uploaded",
                    "spec": {
                        "source": {
                            "kind": "UploadedNewlineDelimitedJsonFile",
                            "sizeBytes": 10,
                            "crc32c": "AAAAAA==",
                        }
                    },
                },
            )
        await ev.expect(
            errors.DatasetWaitTimeoutError,
            lambda: batch.datasets.wait_until_done(
                pending.json()["id"], interval=0.05, timeout=0.2
            ),
        )

        # A view with a retry callback, and a raw response: what they hand out is scanned.
        events: list[RetryEvent] = []
        view = client.with_options(
            timeout=10,
            retry=RetryPolicy(attempts=3, backoff=FAST_RETRY.backoff, on_retry=events.append),
        )
        nexus.inject_fault(method="PUT", path="/secret$", status=503, times=1)
        hooks = view.get_project(nexus.project_id).batch.webhooks
        rotated_hook, response = await hooks.with_raw_response.update_secret(hook.id, rotated)
        assert events, "the view's retry callback should have been called"
        ev.add("view", view, hooks.with_raw_response, rotated_hook, *events)
        ev.add("raw response", response, response.headers, response.request.headers)

        # A client used on a second event loop (another thread's).
        stray = AsyncClient(key, base_url=nexus.base_url, retry=FAST_RETRY)
        stray_jobs = stray.get_project(nexus.project_id).batch.jobs
        await stray_jobs.list()
        await ev.expect(
            errors.EventLoopError,
            lambda: anyio.to_thread.run_sync(lambda: anyio.run(stray_jobs.list)),
        )
        await stray.aclose()

        # Auth failures, with the key (or a near miss of it) in the header.
        other_project, _ = nexus.add_project()
        await ev.expect(
            errors.ForbiddenError, lambda: client.get_project(other_project).batch.jobs.list()
        )
    await ev.expect(errors.ClientClosedError, lambda: batch.jobs.list())
    async with AsyncClient(key[::-1], base_url=nexus.base_url, retry=FAST_RETRY) as wrong:
        jobs = wrong.get_project(nexus.project_id).batch.jobs
        await ev.expect(errors.ForbiddenError, jobs.list)  # an unknown key
        nexus.inject_fault(method="GET", path="/batch/jobs$", status=401, times=1)
        await ev.expect(errors.UnauthorizedError, jobs.list)
    try:
        AsyncClient(key + " x", base_url=nexus.base_url)
    except errors.ValidationError as exc:
        ev.errors.append(exc)
        ev.add("ValidationError", exc)

    # Transport errors: refused, timed out, and an undecodable body.
    dead = DeadPort()
    try:
        async with AsyncClient(
            key, base_url=f"http://127.0.0.1:{dead.port}", retry=FAST_RETRY
        ) as c:
            await ev.expect(
                errors.NexusConnectionError,
                lambda: c.get_project(nexus.project_id).batch.webhooks.update_secret(
                    hook.id, rotated
                ),
            )
    finally:
        dead.close()
    async with AsyncClient(key, base_url=nexus.base_url, retry=FAST_RETRY, timeout=0.2) as slow:
        nexus.inject_fault(method="PUT", path="/secret$", status=None, latency=1.0, times=None)
        await ev.expect(
            errors.RequestTimeoutError,
            lambda: slow.get_project(nexus.project_id).batch.webhooks.update_secret(
                hook.id, rotated
            ),
        )
        nexus.clear_faults()

    def garbled(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/secret"):
            return httpx.Response(
                200, content=b"\x1f\x8b garbage", headers={"content-encoding": "gzip"}
            )
        return httpx.Response(200, text="<html>" + request.content.decode() + "</html>")

    http = httpx.AsyncClient(transport=httpx.MockTransport(garbled))
    async with AsyncClient(
        key, base_url="http://nexus.test", http_client=http, retry=FAST_RETRY
    ) as mock:
        hooks = mock.get_project(nexus.project_id).batch.webhooks
        await ev.expect(errors.TransportError, lambda: hooks.update_secret(hook.id, rotated))
        await ev.expect(
            errors.ResponseDecodeError,
            lambda: hooks.create(
                "echo", {"endpoint": DEAD_ENDPOINT, "secret": {"contents": given}, **NO_RETRIES}
            ),
        )
    await http.aclose()

    # Receiving: repr, a forged delivery, a signed body that is not a delivery.
    async def ignore(_: object) -> None:
        return None

    receiver = DeliveryReceiver([rotated, given], ignore)
    ev.add("receiver", receiver)
    body = json.dumps(wire_batch.DELIVERY).encode()
    stamp = str(int(time.time()))
    forged = {"webhook-id": "d1", "webhook-timestamp": stamp, "webhook-signature": "v1,AAAA"}
    ev.add("forged", receiver.handle(body, forged))
    try:
        signing.verify(given, "d1", stamp, body, "v1,AAAA")
    except signing.SignatureError as exc:
        ev.add("SignatureError", exc)
    now = int(time.time())
    headers = {
        "webhook-id": "d2",
        "webhook-timestamp": str(now),
        "webhook-signature": signing.sign(given, "d2", now, b"{}"),
    }

    async def not_a_delivery() -> None:
        verify_delivery(given, b"{}", headers)

    async def bad_signature() -> None:
        verify_delivery(rotated, body, {**headers, "webhook-id": "d3"})

    async def not_a_job() -> None:
        structure({"id": given}, Job)

    await ev.expect(errors.StructureError, not_a_job)
    await ev.expect(errors.DeliveryDecodeError, not_a_delivery)
    await ev.expect(errors.WebhookSignatureError, bad_signature)
    return ev, generated, hook.id


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(list(argv))
    out, err = capsys.readouterr()
    return out + err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_secrets_never_leak(
    backend: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "sk-KEYSECRET-" + random_secrets.token_hex(16)
    given = base64.b64encode(b"G" * 4 + random_secrets.token_bytes(28)).decode()
    rotated = signing.generate_secret()
    texts: list[tuple[str, str]] = []
    with start_blocking_portal(backend) as portal:
        nexus = LocalNexus(secret_key=key)
        with portal.wrap_async_context_manager(nexus):
            ev, generated, hook_id = portal.call(_sdk_run, nexus, key, given, rotated)
            texts += ev.texts

            # Every error class the SDK raises was produced for real.
            raised = {type(exc) for exc in ev.errors}
            bases = {errors.NexusError, errors.APIError}
            missing = {getattr(errors, n) for n in errors.__all__} - raised - bases
            assert not missing, f"not exercised: {sorted(c.__name__ for c in missing)}"

            # The CLI: every API command, including failures, with and without --json.
            monkeypatch.setenv("DATATURE_SECRET_KEY", key)
            monkeypatch.setenv("DATATURE_API_BASE_URL", nexus.base_url)
            monkeypatch.setenv("DATATURE_PROJECT_ID", nexus.project_id)
            secret_file = tmp_path / "hook.secret"
            secret_file.write_text(given + "\n")
            bad_file = tmp_path / "bad.secret"
            bad_file.write_text(given[:-4] + "!!!!\n")
            dataset_file = tmp_path / "items.ndjson"
            dataset_file.write_text(json.dumps({"kind": "Image", "url": png_data_url()}) + "\n")
            cli_out: list[str] = []
            create = ["webhooks", "create", "cli", DEAD_ENDPOINT, "--max-retries", "0"]
            create.append("--secret-file")
            cli_out.append(_cli(capsys, *create, str(secret_file)))
            cli_out.append(_cli(capsys, *create, str(secret_file), "--json"))
            cli_out.append(_cli(capsys, *create, str(bad_file)))
            cli_out.append(_cli(capsys, *create, str(tmp_path / "fresh.secret")))
            for json_flag in ([], ["--json"]):
                for argv in (
                    ["webhooks", "list"],
                    ["webhooks", "get", hook_id],
                    ["webhooks", "test", hook_id],
                    ["jobs", "list"],
                    ["datasets", "list"],
                    ["datasets", "create", "cli", str(dataset_file), "--wait"],
                    ["jobs", "get", "batchjob_missing"],
                    ["webhooks", "get", "not-a-webhook"],
                ):
                    cli_out.append(_cli(capsys, *argv, *json_flag))
            nexus.inject_fault(method="GET", path="/batch/jobs$", status=503, times=None)
            cli_out.append(_cli(capsys, "jobs", "list"))
            nexus.clear_faults()
            for wrong_key in (key[::-1], key + " x"):
                cli_out.append(_cli(capsys, "jobs", "list", "--secret-key", wrong_key))
            # The logging switch in a process of its own: its request log on stderr.
            switched = subprocess.run(
                [sys.executable, "-m", "nexus_async.cli", "jobs", "list"],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "NEXUS_LOG": "debug"},
            )
            assert "GET " in switched.stderr, switched.stderr
            cli_out += [switched.stdout, switched.stderr]
            texts += [("cli", text) for text in cli_out]
            fresh = (tmp_path / "fresh.secret").read_text().strip()

    texts += [("log", caplog.text)]
    texts += [(f"log {r.name}", r.getMessage()) for r in caplog.records]
    assert any("retrying" in t for _, t in texts), "the run should include retries"
    assert caplog.records, "the run should have logged"
    leaks = [
        f"{name} leaked into {where}: {text[:300]!r}"
        for name, secret in [
            ("the project key", key),
            ("the given webhook secret", given),
            ("the generated webhook secret", generated),
            ("the rotated webhook secret", rotated),
            ("the CLI-generated webhook secret", fresh),
        ]
        for where, text in texts
        if any(piece in text for piece in _pieces(secret))
    ]
    assert not leaks, "\n".join(leaks)


async def test_echoed_secrets_are_redacted_from_error_messages() -> None:
    """Servers echo requests in errors; the key and webhook secrets used to be quoted back."""
    key = "sk-echo-" + random_secrets.token_hex(12)
    secret = signing.generate_secret()
    answers: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda r: httpx.Response(400, json={"message": f"bad body {r.content.decode()}"}),
        lambda r: httpx.Response(502, text=f"upstream got {r.content.decode()}"),
        lambda r: httpx.Response(401, json={"message": f"unknown key {r.headers['secret-key']}"}),
        lambda r: httpx.Response(200, text=f"<pre>{r.content.decode()}</pre>"),
    ]
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: answers.pop(0)(r)))
    policy = RetryPolicy(attempts=1)
    async with AsyncClient(key, base_url="http://x.test", http_client=http, retry=policy) as c:
        hooks = c.get_project("proj_1").batch.webhooks
        seen: list[errors.NexusError] = []
        for cls in (errors.BadRequestError, errors.ServerError, errors.UnauthorizedError):
            with pytest.raises(cls) as info:
                await hooks.update_secret("webhook_1", secret)
            seen.append(info.value)
        with pytest.raises(errors.ResponseDecodeError) as decode:
            await hooks.create(
                "h", {"endpoint": DEAD_ENDPOINT, "secret": {"contents": secret}}, recover=False
            )
        seen.append(decode.value)
    await http.aclose()
    for exc in seen:
        assert "[redacted]" in str(exc)
        for text in (str(exc), repr(exc)):
            assert secret[:12] not in text
            assert key not in text


# ------------------------------------------------------------ keys and configuration


@pytest.mark.parametrize(
    "key",
    ["sk-pasted\u2013from-a-web-page", "sk-caf\u00e9-key", "sk-\u200bzero-width"],
    ids=["en-dash", "accent", "zero-width"],
)
def test_a_non_ascii_key_is_rejected_at_construction_without_echoing_it(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Such a key used to be accepted; every call then raised a UnicodeEncodeError holding it."""
    with pytest.raises(errors.ValidationError, match="secret_key") as info:
        AsyncClient(key, base_url="http://nexus.test")
    monkeypatch.setenv("DATATURE_SECRET_KEY", key)
    with pytest.raises(errors.ValidationError) as from_env:
        AsyncClient(base_url="http://nexus.test")
    for exc in (info.value, from_env.value):
        for text in (str(exc), repr(exc)):
            assert key not in text
            assert key[3:10] not in text


PASSWORD = "hunter2-pw-8f3a"


@pytest.mark.parametrize(
    ("base_url", "match"),
    [
        (f"https://admin:{PASSWORD}@api.example.test", "user name or password"),
        ("https://admin@api.example.test", "user name or password"),
        ("https://api.example.test/v1?region=eu", "query or fragment"),
        ("https://api.example.test/v1?", "query or fragment"),
        ("https://api.example.test/#top", "query or fragment"),
        ("ftp://api.example.test", "http or https"),
        ("api.example.test", "http or https"),
        ("https://", "host"),
        ("http:///v1", "host"),
        ("https://api.example.test:99999", "not a valid URL"),
        ("https://api.example.test/v 1", "whitespace"),
    ],
)
def test_base_url_is_validated_fully(base_url: str, match: str) -> None:
    """Only the scheme used to be checked: a query or fragment sent calls to the wrong path."""
    with pytest.raises(errors.ValidationError, match=match) as info:
        AsyncClient("sk-k", base_url=base_url)
    assert "base_url" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)


@pytest.mark.parametrize(
    "base_url",
    ["https://api.datature.io", "http://127.0.0.1:8080/", "https://host.test/prefix/v1"],
)
def test_good_base_urls_are_kept(base_url: str) -> None:
    assert AsyncClient("sk-k", base_url=base_url).base_url == base_url.rstrip("/")


async def test_httpx_request_log_leaves_out_the_upload_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """httpx logs every request at INFO with its full URL: the signed upload URL's too."""
    caplog.set_level(logging.INFO, logger="httpx")
    signature = "X-Goog-Signature=" + random_secrets.token_hex(16)
    upload_url = f"https://storage.test/bucket/dataset_1.ndjson?{signature}"
    dataset = wire_batch.dataset()
    dataset["status"]["source"]["uploadUrl"]["url"] = upload_url

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.host == "storage.test":
            return httpx.Response(200)
        if request.method == "GET":  # the API's own query strings stay in the log
            return httpx.Response(200, json=wire_batch.page(dataset))
        return httpx.Response(200, json=dataset)

    http = httpx.AsyncClient(transport=httpx.MockTransport(api))
    async with AsyncClient("sk-k", base_url="http://nexus.test", http_client=http) as client:
        datasets = client.get_project("proj_1").batch.datasets
        await datasets.create_from_items("x", ["https://cdn.test/1.png"])
        await datasets.list({"limit": 5})
    await http.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("PUT https://storage.test/bucket/dataset_1.ndjson" in line for line in lines)
    assert any("limit=5" in line for line in lines)
    assert not [line for line in lines if signature in line or "X-Goog" in line]


async def test_requests_that_errors_carry_do_not_show_the_key() -> None:
    """httpx redacts only `Authorization` in header reprs; the key travels as `Secret-Key`."""
    key = "sk-carried-" + random_secrets.token_hex(12)
    answers: list[httpx.Response | Exception] = [
        httpx.Response(404, json={"message": "no"}),
        httpx.ConnectError("refused"),
    ]

    def api(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(api))
    policy = RetryPolicy(attempts=1)
    async with AsyncClient(key, base_url="http://nexus.test", http_client=http, retry=policy) as c:
        jobs = c.get_project("proj_1").batch.jobs
        with pytest.raises(errors.NotFoundError) as status:
            await jobs.get("batchjob_1")
        with pytest.raises(errors.NexusConnectionError) as transport:
            await jobs.get("batchjob_1")
    await http.aclose()
    response = status.value.response
    assert response is not None
    cause = transport.value.__cause__
    assert isinstance(cause, httpx.RequestError)
    for request in (response.request, cause.request):
        for text in (repr(request.headers), str(dict(request.headers)), repr(request)):
            assert key not in text
        assert request.headers["Secret-Key"] == "[redacted]"
