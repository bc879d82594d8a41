"""CRC32C: known vectors, the pure-Python fallback against the C implementation."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexus_async import _crc32c
from nexus_async._crc32c import Crc32c, crc32c, crc32c_b64

# RFC 3720 (iSCSI) appendix B.4 vectors and the classic check value.
VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


@pytest.mark.parametrize(("data", "expected"), VECTORS)
def test_known_vectors_with_both_implementations(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected
    assert _crc32c._extend_python(0, data) == expected
    native = _crc32c._native()
    assert native is not None, "google_crc32c should be installed for tests"
    assert native(0, data) == expected


def test_base64_is_the_big_endian_digest() -> None:
    assert crc32c_b64(b"123456789") == "4waSgw=="
    assert base64.b64decode(crc32c_b64(b"123456789")) == (0xE3069283).to_bytes(4, "big")


@given(st.binary(max_size=4096))
def test_fallback_agrees_with_google_crc32c(data: bytes) -> None:
    native = _crc32c._native()
    assert native is not None
    assert _crc32c._extend_python(0, data) == native(0, data)


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_incremental_equals_whole(chunks: list[bytes]) -> None:
    hasher = Crc32c()
    value = 0
    for chunk in chunks:
        hasher.update(chunk)
        value = crc32c(chunk, value)
    whole = b"".join(chunks)
    assert hasher.value == value == crc32c(whole)
    assert hasher.b64() == crc32c_b64(whole)
    assert hasher.digest() == crc32c(whole).to_bytes(4, "big")


def test_works_without_google_crc32c(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_crc32c, "_native", lambda: None)
    assert crc32c_b64(b"123456789") == "4waSgw=="
    hasher = Crc32c(b"1234")
    hasher.update(b"56789")
    assert hasher.value == 0xE3069283
