"""CRC32C (Castagnoli) checksums in the form the upload contract uses.

A dataset's `crc32c` is the base64 of the big-endian 4-byte CRC32C digest of the file,
as in GCS's `x-goog-hash: crc32c=...`. The C implementation from `google_crc32c` is
used when it can be imported (the `server` extra installs it); otherwise a table-driven
pure-Python fallback computes the same values, slowly (a few MB/s), so the SDK has no
hard dependency on it.

Example:
    >>> crc32c_b64(b"123456789")
    '4waSgw=='
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable

__all__ = ["Crc32c", "crc32c", "crc32c_b64"]

_POLY = 0x82F63B78  # the Castagnoli polynomial, bit-reflected


@functools.cache
def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def _extend_python(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Continue a CRC32C over `data`; `crc` is the value of the bytes before it."""
    table = _table()
    value = crc ^ 0xFFFFFFFF
    for byte in bytes(data):
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ 0xFFFFFFFF


@functools.cache
def _native() -> Callable[[int, bytes], int] | None:
    """google_crc32c's C `extend`, or None; loaded on first use to keep imports light."""
    try:
        import google_crc32c
    except ImportError:  # pragma: no cover - the dev environment installs it
        return None
    extend: Callable[[int, bytes], int] = google_crc32c.extend
    return extend


def _extend(crc: int, data: bytes | bytearray | memoryview) -> int:
    native = _native()
    if native is not None:
        return int(native(crc, bytes(data)))
    return _extend_python(crc, data)


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """Return the CRC32C of `data` as an int, continuing from `value` if given."""
    return _extend(value, data)


def crc32c_b64(data: bytes | bytearray | memoryview) -> str:
    """Return the base64 of the big-endian CRC32C digest of `data`."""
    return Crc32c(data).b64()


class Crc32c:
    """An incremental CRC32C, for bodies that arrive in chunks.

    Example:
        hasher = Crc32c()
        async for chunk in stream:
            hasher.update(chunk)
        header = f"crc32c={hasher.b64()}"
    """

    __slots__ = ("value",)

    def __init__(self, data: bytes | bytearray | memoryview = b"") -> None:
        self.value = _extend(0, data) if data else 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add `data` to the checksum."""
        if data:
            self.value = _extend(self.value, data)

    def digest(self) -> bytes:
        """The 4-byte big-endian digest."""
        return self.value.to_bytes(4, "big")

    def b64(self) -> str:
        """The base64 of `digest`, the form used on the wire."""
        return base64.b64encode(self.digest()).decode("ascii")
