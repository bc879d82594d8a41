"""`project.batch.datasets`: the items a batch job predicts on.

A dataset is created in two requests: a POST that declares the file's size and
CRC32C, then an upload of the file to the pre-signed URL the API returns. Files
are never read into memory whole: one streaming pass validates every line and
computes the size and checksum before anything is sent, and the upload streams
the file again. The reading and the per-line checks run chunk by chunk in a
worker thread, so a large file neither blocks the event loop nor delays a
cancellation by more than one chunk.
"""

from __future__ import annotations

import contextlib
import json
import json.scanner
import logging
import os
import re
import tempfile
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
)
from typing import IO, Any

import anyio
import anyio.lowlevel
import httpx

from . import _otel, errors
from ._convert import unstructure
from ._crc32c import Crc32c
from ._create import create_once
from ._http import HTTPCore
from ._poll import watch_changes
from ._resource import Collection
from ._runtime import Runtime
from ._validate import check_keys, check_str
from .models import (
    Dataset,
    DatasetSourceSpec,
    DatasetSpec,
    DeleteResponse,
    PaginationResponse,
)
from .options import MAX_PAGE, Pagination

__all__ = ["CHUNK_BYTES", "MAX_LINE_BYTES", "SPOOL_MAX_BYTES", "Datasets"]

logger = logging.getLogger("nexus_async")

CHUNK_BYTES = 1 << 20
"""Bytes read (and sent) at a time."""

MAX_LINE_BYTES = 8 << 20
"""Longest NDJSON line accepted (room for a data: URL of a large image); bounds memory."""

SPOOL_MAX_BYTES = 8 << 20
"""`create_from_items` keeps the NDJSON it builds in memory up to this size, then on disk."""

_ITEM_KEYS = frozenset({"kind", "url"})
_WHITESPACE = re.compile(r"\s")
# The C scanner behind json.loads: one call per line, without loads' wrapping.
# (typeshed types its argument as a scanner; it takes the decoder whose settings it uses.)
_scan_json: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)
_CLEANUP_SECONDS = 3.0


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _item_problem(item: Any) -> str | None:
    """Why `item` (decoded JSON) is not a dataset item, or None if it is one."""
    if not isinstance(item, dict):
        return (
            'expected a JSON object like {"kind": "Image", "url": "https://..."} '
            f"(got {type(item).__name__})"
        )
    kind = item.get("kind")
    if kind != "Image":
        return f'`kind` must be "Image" (got {_show(kind)})'
    url = item.get("url")
    if not isinstance(url, str) or not url:
        return f"`url` must be a non-empty string (got {_show(url)})"
    if _WHITESPACE.search(url):
        return f"`url` must not contain whitespace (got {_show(url)})"
    return None


class _NdjsonScan:
    """Validates an NDJSON dataset fed in chunks, counting its bytes, CRC32C and items."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.crc = Crc32c()
        self.size = 0
        self.items = 0
        self._line = 0
        self._carry = b""

    def _fail(self, problem: str, line: int | None = None) -> errors.DatasetFileError:
        where = f"`dataset_path` {self.path!r}" + (f", line {line}" if line else "")
        return errors.DatasetFileError(f"{where}: {problem}", path=self.path, line=line)

    def feed(self, chunk: bytes) -> None:
        self.crc.update(chunk)
        self.size += len(chunk)
        data = self._carry + chunk if self._carry else chunk
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        if cut:
            self._check_block(data[: cut - 1])
        if len(self._carry) > MAX_LINE_BYTES:
            raise self._fail(f"longer than {MAX_LINE_BYTES} bytes", self._line + 1)

    def finish(self) -> None:
        if self._carry:
            self._check_block(self._carry)
            self._carry = b""
        if self.items == 0:
            raise self._fail("has no items (one JSON object per line expected)")

    def _check_block(self, block: bytes) -> None:
        """Check complete lines (joined by newlines); most take only the fast path.

        The fast path accepts exactly the lines the full check (`_check_line`) accepts
        with no surrounding whitespace; anything else goes through the full check,
        which raises with the line's number or skips a blank line. Per-line Python
        calls are what a large file costs, so the fast one is kept minimal.
        """
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            for raw in block.split(b"\n"):
                self._line += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self._fail(f"not UTF-8 (byte {exc.start})", self._line) from None
                self._check_line(line)
            return
        scan = _scan_json
        has_space = _WHITESPACE.search
        number = self._line
        fast = 0
        for line in text.split("\n"):
            number += 1
            try:
                item, end = scan(line, 0)
            except (StopIteration, ValueError, RecursionError):
                item, end = None, -1
            if (
                end == len(line)
                and type(item) is dict
                and item.get("kind") == "Image"
                and type(url := item.get("url")) is str
                and url
                and has_space(url) is None
            ):
                fast += 1
                continue
            self._line = number
            self.items += fast
            fast = 0
            self._check_line(line)
        self._line = number
        self.items += fast

    def _check_line(self, text: str) -> None:
        """The full check of line `self._line`: count it, skip it if blank, or raise."""
        if not text.strip():
            return  # blank lines carry no item; the API skips them too
        try:
            item = json.loads(text)
        except ValueError as exc:
            raise self._fail(f"not valid JSON ({exc})", self._line) from None
        except RecursionError:
            raise self._fail("not a dataset item (JSON nested too deep)", self._line) from None
        problem = _item_problem(item)
        if problem is not None:
            raise self._fail(problem, self._line)
        self.items += 1


async def _scan_file(path: str) -> _NdjsonScan:
    """Validate the file at `path` and compute its size and CRC32C in one streaming pass."""
    if not path.lower().endswith(".ndjson"):
        raise errors.DatasetFileError(
            f"`dataset_path` must be a .ndjson file (got {path!r})", path=path
        )
    scan = _NdjsonScan(path)
    try:
        file = await anyio.to_thread.run_sync(open, path, "rb")
    except FileNotFoundError:
        raise errors.DatasetFileError(
            f"`dataset_path` {path!r} does not exist", path=path
        ) from None
    except OSError as exc:
        raise errors.DatasetFileError(
            f"`dataset_path` {path!r} cannot be read ({type(exc).__name__}: {exc.strerror})",
            path=path,
        ) from exc

    def step() -> bool:
        chunk = file.read(CHUNK_BYTES)
        if chunk:
            scan.feed(chunk)
        return bool(chunk)

    try:
        while await anyio.to_thread.run_sync(step):
            pass
    except IsADirectoryError:
        raise errors.DatasetFileError(f"`dataset_path` {path!r} is not a file", path=path) from None
    finally:
        file.close()
    scan.finish()
    return scan


def _item_line(item: Any, index: int) -> bytes:
    """One item of `create_from_items` as an NDJSON line, or `DatasetFileError`."""
    if isinstance(item, str):
        data: dict[str, Any] = {"kind": "Image", "url": item}
    elif isinstance(item, Mapping):
        try:
            data = {"kind": "Image", **check_keys(item, _ITEM_KEYS, f"items[{index}]")}
        except errors.ValidationError as exc:
            raise errors.DatasetFileError(str(exc), item=index) from None
    else:
        raise errors.DatasetFileError(
            f"`items[{index}]` must be a URL string or a dict with `url` (got {_show(item)})",
            item=index,
        )
    problem = _item_problem(data)
    if problem is not None:
        raise errors.DatasetFileError(f"`items[{index}]`: {problem}", item=index)
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


async def _each(items: Any) -> AsyncGenerator[Any, None]:
    """Iterate a sync or async iterable, letting other tasks run now and then."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
        return
    for count, item in enumerate(items, start=1):
        yield item
        if count % 1000 == 0:
            await anyio.lowlevel.checkpoint()


def _body(file: IO[bytes], size: int, where: str) -> Callable[[], AsyncIterable[bytes]]:
    """A fresh stream of the first `size` bytes of `file` for each upload attempt."""
    return lambda: _FileBody(file, size, where)


class _FileBody(httpx.AsyncByteStream):
    """The first `size` bytes of `file`, read in chunks off the event loop.

    An iterator object, not an async generator: a cancelled upload leaves nothing
    suspended for the garbage collector to finalize (trio warns about those).
    """

    def __init__(self, file: IO[bytes], size: int, where: str) -> None:
        self._file = file
        self._size = size
        self._where = where
        self._sent: int | None = None  # None until rewound

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._sent is None:
            await anyio.to_thread.run_sync(self._file.seek, 0)
            self._sent = 0
        if self._sent >= self._size:
            raise StopAsyncIteration
        want = min(CHUNK_BYTES, self._size - self._sent)
        chunk = await anyio.to_thread.run_sync(self._file.read, want)
        if not chunk:
            raise errors.DatasetFileError(
                f"{self._where} shrank while it was uploaded ({self._sent} of {self._size} bytes)"
            )
        self._sent += len(chunk)
        return chunk


class Datasets(Collection[Dataset]):
    """The datasets of one project. Get it as `client.get_project(...).batch.datasets`."""

    def __init__(self, http: HTTPCore, project_id: str, runtime: Runtime) -> None:
        super().__init__(
            http,
            project_id,
            runtime,
            segment="datasets",
            model=Dataset,
            prefix="dataset_",
            id_name="dataset_id",
        )

    async def create(
        self, name: str, dataset_path: str | os.PathLike[str], *, recover: bool = True
    ) -> Dataset:
        """Create a dataset from an NDJSON file and upload the file.

        The file has one item per line, `{"kind": "Image", "url": "https://..."}`
        (blank lines are skipped). It is checked line by line while its size and
        CRC32C are computed, before anything is sent; then the dataset is created
        and the file streamed to the upload URL the API returned. Memory use does
        not grow with the file.

        Args:
            name: The dataset's name.
            dataset_path: Path to a `.ndjson` file.
            recover: When the create's answer was lost (or a 500/502/504 may follow
                the effect), find the dataset it made (same name, size and CRC32C,
                created during the attempt, not claimed by another call of this
                client; about one list page) and upload to it, creating again only
                when it provably does not exist; False raises instead. Identical
                creates racing from different processes cannot be told apart.

        Returns:
            The new Dataset, as created (before the upload was processed): use
            `wait_until_done` to wait until it is ready for jobs.

        Raises:
            ValidationError: a bad `name`; nothing was sent.
            DatasetFileError: the file is missing, not `.ndjson`, empty, or has a bad
                line (`.line` is its 1-based number); nothing was sent.
            APIStatusError: the create or the upload was refused (e.g. a checksum
                mismatch because the file changed). If the upload fails, the new
                dataset is deleted again (best effort).

        Example:
            dataset = await datasets.create("street-scenes", "items.ndjson")
            dataset = await datasets.wait_until_done(dataset.id)
        """
        check_str(name, "name")
        if not isinstance(dataset_path, (str, os.PathLike)):
            raise errors.ValidationError(
                f"`dataset_path` must be a path (got {_show(dataset_path)})"
            )
        path = os.fspath(dataset_path)
        if not isinstance(path, str):
            raise errors.ValidationError(f"`dataset_path` must be a text path (got {path!r})")
        scan = await _scan_file(path)
        file = await anyio.to_thread.run_sync(open, path, "rb")
        try:
            return await self._create_and_upload(
                name, file, scan.size, scan.crc.b64(), f"`dataset_path` {path!r}", recover
            )
        finally:
            file.close()

    async def create_from_items(
        self,
        name: str,
        items: Iterable[str | Mapping[str, Any]] | AsyncIterable[str | Mapping[str, Any]],
        *,
        recover: bool = True,
    ) -> Dataset:
        """Create a dataset from item URLs (or item dicts) without writing a file yourself.

        The items are validated and written as NDJSON to a spooled temporary file
        (in memory up to `SPOOL_MAX_BYTES`, 8 MiB, then on disk) while its size and
        CRC32C are computed; then the dataset is created and the spool uploaded.
        A bad item fails before anything is sent.

        Args:
            name: The dataset's name.
            items: An iterable or async iterable of URLs (`str`) or dicts
                `{"url": ..., "kind": "Image"}` (`kind` may be left out).
            recover: As for `create`.

        Returns:
            The new Dataset, as created; see `create`.

        Raises:
            ValidationError: bad `name` or `items`; nothing was sent.
            DatasetFileError: a bad item (`.item` is its 0-based index) or no items.

        Example:
            dataset = await datasets.create_from_items("cams", [f"https://cdn/{i}.jpg"
                                                               for i in range(100)])
        """
        check_str(name, "name")
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(
            items, (Iterable, AsyncIterable)
        ):
            raise errors.ValidationError(
                f"`items` must be an iterable of URLs or item dicts (got {_show(items)})"
            )
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES)  # noqa: SIM115
        try:
            crc = Crc32c()
            size = 0
            count = 0
            buffer = bytearray()
            each = _each(items)
            async with contextlib.aclosing(each):  # closed even when cancelled mid-way
                async for item in each:
                    buffer += _item_line(item, count)
                    count += 1
                    if len(buffer) >= CHUNK_BYTES:
                        crc.update(buffer)
                        size += len(buffer)
                        await anyio.to_thread.run_sync(spool.write, bytes(buffer))
                        buffer.clear()
            if count == 0:
                raise errors.DatasetFileError("`items` is empty")
            crc.update(buffer)
            size += len(buffer)
            await anyio.to_thread.run_sync(spool.write, bytes(buffer))
            return await self._create_and_upload(name, spool, size, crc.b64(), "the items", recover)
        finally:
            spool.close()

    async def _create_and_upload(
        self, name: str, file: IO[bytes], size: int, crc32c: str, where: str, recover: bool
    ) -> Dataset:
        spec = DatasetSpec(source=DatasetSourceSpec(size_bytes=size, crc32c=crc32c))
        body = {"name": name, "spec": unstructure(spec)}
        dataset = await create_once(
            self._http,
            self._runtime.creates,
            self._base,
            body,
            into=Dataset,
            matches=lambda made: (
                made.name == name
                and made.status.source.size_bytes == size
                and made.status.source.crc32c == crc32c
            ),
            recover=recover,
        )
        upload = dataset.status.source.upload_url
        headers = {**upload.headers, "Content-Length": str(size)}
        try:
            await self._http.upload(
                upload.method, upload.url, headers=headers, content=_body(file, size, where)
            )
        except BaseException:
            # The caller gets no dataset ID from a failed create, so don't leave one behind.
            with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
                try:
                    await self.delete(dataset.id)
                except errors.NexusError as exc:
                    logger.warning(
                        "could not delete dataset %s after its upload failed: %s", dataset.id, exc
                    )
            raise
        logger.debug("uploaded %d bytes to dataset %s", size, dataset.id)
        return dataset

    async def get(self, dataset_id: str) -> Dataset:
        """The dataset with this ID."""
        return await self._fetch(dataset_id)

    async def list(
        self, pagination: Pagination | Mapping[str, Any] | None = None
    ) -> PaginationResponse[Dataset]:
        """One page of the project's datasets, newest first.

        Args:
            pagination: `{"limit": 1..1000 (default 1000), "page": cursor}` or a `Pagination`.
        """
        return await self._page(pagination)

    def iter(self, *, page_size: int = MAX_PAGE) -> AsyncGenerator[Dataset, None]:
        """Every dataset of the project across all pages, newest first.

        Example:
            async for dataset in datasets.iter():
                ...
        """
        return self._all(page_size)

    async def delete(self, dataset_id: str) -> DeleteResponse:
        """Delete a dataset.

        If an earlier attempt of this call was cut off after the API deleted the
        dataset, the retry's 404 is reported as the deletion it is.
        """
        return await self._remove(dataset_id)

    async def wait_until_done(
        self,
        dataset_id: str,
        *,
        interval: float = 5.0,
        timeout: float | None = 36_000.0,
    ) -> Dataset:
        """Wait until the dataset is ready for jobs (Uploaded or Processed) and return it.

        Polls like `jobs.wait_until_done` (backoff up to `interval`, transient errors
        ridden out); cancel it like any other await.

        Args:
            dataset_id: The dataset.
            interval: Longest wait between two polls, in seconds.
            timeout: Seconds to wait at most; None waits without limit.

        Raises:
            DatasetFailedError: the dataset ended FailedUpload or FailedProcessing;
                `.dataset` is its final snapshot.
            DatasetWaitTimeoutError: not ready at the deadline; `.dataset` is the last
                snapshot (a `WaitTimeoutError`).

        Example:
            dataset = await datasets.wait_until_done(dataset.id, timeout=300)
        """
        self._path(dataset_id)  # checked before the first poll

        def timed_out(last: Dataset | None) -> BaseException:
            state = "never answered" if last is None else f"last seen {last.status.overview}"
            return errors.DatasetWaitTimeoutError(
                f"dataset {dataset_id} not ready after {timeout} s ({state})", dataset=last
            )

        snapshots = watch_changes(
            lambda: self._fetch(dataset_id),
            state=lambda dataset: dataset.status,
            finished=lambda dataset: dataset.status.is_finished,
            interval=interval,
            timeout=timeout,
            timed_out=timed_out,
            name=dataset_id,
            outage_budget=self._outage_budget,
        )
        final: Dataset | None = None
        with _otel.wait_span("datasets.wait_until_done", dataset_id=dataset_id):
            try:
                async for snapshot in snapshots:
                    final = snapshot
            finally:
                await snapshots.aclose()
            assert final is not None, "watch_changes ends only after yielding a finished snapshot"
            if final.status.is_failed:
                raise errors.DatasetFailedError(
                    f"dataset {dataset_id} ended {final.status.overview}: {final.status.message}",
                    dataset=final,
                )
            return final
