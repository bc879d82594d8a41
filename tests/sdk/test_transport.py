"""The SDK's transport: no TLS context for `http://`, one verifying context for `https://`.

The `https://` tests serve a page of jobs over TLS on loopback with a certificate of a
test CA made here (with `cryptography`): the SDK refuses it with the default CA bundle,
and accepts it once `SSL_CERT_FILE` names the test CA, so `https://` requests go
through httpx's verifying context.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import ByteStream
from anyio.streams.tls import TLSListener

from nexus_async import AsyncClient, NexusConnectionError, RetryPolicy, _transport
from nexus_async.server import LocalNexus

from ..support.http import answer_each_request
from .wire import page

ONE_ATTEMPT = RetryPolicy(attempts=1, total_time=10.0)


@pytest.fixture
def fresh_tls() -> Iterator[None]:
    """The process's TLS context built afresh, and dropped after (it may trust the test CA)."""
    _transport._ssl_context.cache_clear()
    yield
    _transport._ssl_context.cache_clear()


async def test_an_http_client_builds_no_tls_context(
    nexus: LocalNexus, monkeypatch: pytest.MonkeyPatch, fresh_tls: None
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        raise AssertionError("a TLS context was built for an http:// client")

    # Every way httpx and httpcore make one.
    monkeypatch.setattr(httpx, "create_ssl_context", refuse)
    monkeypatch.setattr(ssl, "create_default_context", refuse)
    async with AsyncClient(nexus.secret_key, base_url=nexus.base_url) as client:
        jobs = client.get_project(nexus.project_id).batch.jobs
        async with anyio.create_task_group() as tg:  # several pools, not just one
            for _ in range(8):
                tg.start_soon(jobs.list)
        stats = client.diagnostics().http.transport
        assert stats is not None
        assert stats.pools >= 2
        assert stats.handled == 8
    assert _transport._ssl_context.cache_info().currsize == 0


# ------------------------------------------------------------------------------ https


def _certificates(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A test CA's certificate file, and a server context with a certificate it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nexus-async test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = folder / "server.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return ca_file, server


async def _answer_pages(stream: ByteStream) -> None:
    """Answer every request on the connection with an empty page of jobs (keep-alive)."""
    body = json.dumps(page()).encode()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    answer = head % len(body) + body
    await answer_each_request(stream, lambda _: answer)  # GETs: no body


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An `https://` base URL on loopback and the CA file that signed its certificate."""
    ca_file, server_context = _certificates(tmp_path)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    tls = TLSListener(listener, server_context, standard_compatible=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(tls.serve, _answer_pages)
        yield f"https://127.0.0.1:{port}", ca_file
        tg.cancel_scope.cancel()


def _counting(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count httpx's TLS contexts built from now on."""
    built = []
    original = httpx.create_ssl_context

    def create(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", create)
    return lambda: len(built)


async def test_https_is_verified_against_the_default_ca_bundle(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, fresh_tls: None
) -> None:
    base_url, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with AsyncClient("key", base_url=base_url, retry=ONE_ATTEMPT) as client:
        with pytest.raises(NexusConnectionError) as caught:
            await client.get_project("proj_1").batch.jobs.list()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None and len(chain) < 20:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, ssl.SSLCertVerificationError) for e in chain), chain


async def test_https_uses_one_verifying_context_that_trusts_ssl_cert_file(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, fresh_tls: None
) -> None:
    base_url, ca_file = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    built = _counting(monkeypatch)
    for _ in range(2):  # two clients, several connections each
        async with AsyncClient("key", base_url=base_url, retry=ONE_ATTEMPT) as client:
            jobs = client.get_project("proj_1").batch.jobs
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(jobs.list)
            assert (await jobs.list()).data == []
            stats = client.diagnostics().http.transport
            assert stats is not None
            assert stats.pools >= 2
    assert built() == 1
