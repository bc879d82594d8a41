"""What the project's collections (jobs, datasets, webhooks) share.

Each collection is a path under `/projects/{id}/batch/`, whose items have IDs with
one prefix and are read, listed by pages, walked across pages and deleted the same
way. The resource classes keep their public methods (with their own docstrings)
and delegate those to this base.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, Generic, TypeVar

from . import errors
from ._http import HTTPCore, RawResponses, Retry
from ._runtime import Runtime
from ._validate import check_id
from .models import DeleteResponse, PaginationResponse
from .options import MAX_PAGE, Pagination

__all__ = ["Collection"]

T = TypeVar("T")
U = TypeVar("U")


class Collection(Generic[T]):
    """One collection of a project: `/projects/{project_id}/batch/{segment}`."""

    def __init__(
        self,
        http: HTTPCore,
        project_id: str,
        runtime: Runtime,
        *,
        segment: str,
        model: type[T],
        prefix: str,
        id_name: str,
    ) -> None:
        self._http = http
        self._project_id = project_id
        self._runtime = runtime
        self._base = f"/projects/{project_id}/batch/{segment}"
        self._model = model
        self._prefix = prefix
        self._id_name = id_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} project_id={self._project_id!r}>"

    @property
    def with_raw_response(self) -> RawResponses:
        """The same calls, each returning `(result, httpx.Response)`.

        Example: `job, response = await jobs.with_raw_response.get(job_id)`.
        """
        return RawResponses(self)

    @property
    def _outage_budget(self) -> float:
        """How long a wait rides out an unreachable API: the client's retry budget."""
        return self._http.retry.total_time

    def _path(self, resource_id: str, suffix: str = "") -> str:
        """The path of one item; the ID is checked so that it cannot change the path."""
        return f"{self._base}/{check_id(resource_id, self._prefix, self._id_name)}{suffix}"

    async def _fetch(self, resource_id: str) -> T:
        return await self._about(resource_id, "GET", into=self._model)

    async def _about(
        self,
        resource_id: str,
        method: str,
        *,
        into: type[U],
        suffix: str = "",
        retry: Retry = Retry.IDEMPOTENT,
        body: Any = None,
        redact: tuple[str, ...] = (),
    ) -> U:
        """Send a request naming one item, and check that the answer is about that item.

        Callers file answers by the ID they asked for, so another object's body must
        not pass for the one named: it is a `ResponseDecodeError`.
        """
        path = self._path(resource_id, suffix)
        answer = await self._http.request(
            method, path, into=into, retry=retry, body=body, redact=redact
        )
        answered = getattr(answer, "id", None)
        if answered != resource_id:
            raise errors.ResponseDecodeError(
                f"asked about {resource_id}, the API answered about {answered!r}",
                method=method,
                url=self._http.base_url + path,
                status=200,
            )
        return answer

    async def _page(
        self, pagination: Pagination | Mapping[str, Any] | None
    ) -> PaginationResponse[T]:
        params = Pagination.coerce(pagination).to_params()
        return await self._http.request(
            "GET",
            self._base,
            into=PaginationResponse[self._model],  # type: ignore[name-defined]
            retry=Retry.IDEMPOTENT,
            params=params,
        )

    def _all(self, page_size: int = MAX_PAGE) -> AsyncGenerator[T, None]:
        first = Pagination(limit=page_size)  # checked now, not at the first iteration
        return self._walk(first)

    async def _walk(self, pagination: Pagination) -> AsyncGenerator[T, None]:
        while True:
            page = await self._page(pagination)
            for item in page.data:
                yield item
            if page.next_page is None:
                return
            pagination = Pagination(limit=pagination.limit, page=page.next_page)

    async def _remove(self, resource_id: str) -> DeleteResponse:
        """Delete one item; a retry's 404 after a lost answer is the deletion it is.

        Only after an attempt that may have been carried out (no answer, or a 500,
        502 or 504): a 404 after a 503 means the item never existed.
        """
        try:
            return await self._about(resource_id, "DELETE", into=DeleteResponse)
        except errors.NotFoundError as exc:
            if exc.earlier_attempt_may_have_taken_effect:
                return DeleteResponse(id=resource_id, deleted=True)
            raise
