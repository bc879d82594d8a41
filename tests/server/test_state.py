"""State pieces that need no HTTP: cursor paging and NDJSON parsing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nexus_async.server._errors import Invalid
from nexus_async.server._state import Collection, parse_items


@dataclass
class Item:
    id: str
    create_date: int


def collection(n: int) -> Collection[Item]:
    items: Collection[Item] = Collection("things")
    for i in range(n):
        items.add(Item(f"thing_{i:03d}", 1000 + i // 2))  # pairs share createDate
    return items


def walk(items: Collection[Item], limit: int) -> list[str]:
    seen: list[str] = []
    page, next_page, prev_page = items.page(limit, None)
    assert prev_page is None
    for _ in range(100):
        seen += [i.id for i in page]
        if next_page is None:
            return seen
        page, next_page, _ = items.page(limit, next_page)
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_pages_cover_everything_newest_first(limit: int) -> None:
    items = collection(20)
    seen = walk(items, limit)
    assert seen == [f"thing_{i:03d}" for i in reversed(range(20))]


def test_prev_page_returns_to_the_previous_page() -> None:
    items = collection(10)
    first, next_page, _ = items.page(3, None)
    second, _, prev_page = items.page(3, next_page)
    assert prev_page is not None
    back, _, back_prev = items.page(3, prev_page)
    assert [i.id for i in back] == [i.id for i in first]
    assert back_prev is None
    assert [i.id for i in second] == ["thing_006", "thing_005", "thing_004"]


def test_cursor_survives_creates_and_deletes() -> None:
    items = collection(10)
    _, next_page, _ = items.page(3, None)  # thing_009..007 shown
    items.remove("thing_007")  # on the page already seen
    items.remove("thing_005")  # on the next page
    items.add(Item("thing_new", 5000))  # newer than everything
    page, _, _ = items.page(3, next_page)
    assert [i.id for i in page] == ["thing_006", "thing_004", "thing_003"]


def test_empty_and_exhausted_pages() -> None:
    empty: Collection[Item] = Collection("things")
    assert empty.page(10, None) == ([], None, None)
    items = collection(2)
    page, next_page, prev_page = items.page(10, None)
    assert len(page) == 2
    assert next_page is None
    assert prev_page is None


@pytest.mark.parametrize("cursor", ["garbage", "", "e30", "WyJvdGhlciIsIm5leHQiLDEsIngiXQ"])
def test_bad_cursors_are_400(cursor: str) -> None:
    with pytest.raises(Invalid, match="page cursor"):
        collection(3).page(2, cursor or "!!")


def test_cursor_of_another_collection_is_rejected() -> None:
    _, next_page, _ = collection(5).page(2, None)
    other: Collection[Item] = Collection("others")
    with pytest.raises(Invalid, match="others"):
        other.page(2, next_page)


def test_parse_items_reads_urls_and_skips_blank_lines() -> None:
    raw = b'{"kind": "Image", "url": "https://x/1.png"}\n\n{"kind":"Image","url":"data:,a"}\n'
    assert parse_items(raw) == ["https://x/1.png", "data:,a"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"kind":"Image","url":"https://x"}\nnot json\n', "line 2: the item is not valid JSON"),
        (b'{"kind":"Image","url":"https://x"}\n\n[1]\n', "line 3: expected a JSON object"),
        (b'{"kind":"Video","url":"https://x"}', 'line 1: `kind` must be "Image"'),
        (b'{"kind":"Image","url":"ftp://x"}', "line 1: `url` must be an http"),
        (b'{"kind":"Image"}', "line 1: `url` must be a non-empty string"),
        (b'{"kind":"Image","url":"https://a b"}', "line 1: `url` must not contain whitespace"),
        (
            b'{"kind":"Image","url":"http://[::1"}',
            "line 1: `url` must be an http.s. URL with a host",
        ),
        (
            b'{"kind":"Image","url":"http://a:99999/"}',
            "line 1: `url` must be an http.s. URL with a",
        ),
        (b'{"kind":"Image","url":"https:///path"}', "line 1: `url` must be an http.s. URL with a"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_parse_items_names_the_bad_line(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_items(raw)
