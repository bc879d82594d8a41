"""Tiny PNG images, as bytes, data: URLs or files, for items the local server can run."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, ImageDraw


def png_bytes(
    size: tuple[int, int] = (16, 16),
    box: tuple[int, int, int, int] = (4, 2, 9, 7),
    *,
    background: int = 255,
    ink: int = 0,
) -> bytes:
    """A grayscale PNG with a filled rectangle (inclusive corners) on a plain background."""
    image = Image.new("L", size, background)
    ImageDraw.Draw(image).rectangle(box, fill=ink)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(content: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64," + base64.b64encode(content).decode()


def png_data_url(size: int = 16, box: tuple[int, int, int, int] = (4, 4, 11, 11)) -> str:
    """A tiny PNG with a white square on black, as a data: URL the server can gather."""
    return data_url(png_bytes((size, size), box, background=0, ink=255))


def distinct_pngs(count: int, salt: int = 0) -> list[str]:
    """`count` different 16x16 PNGs as data: URLs (a white box placed differently in each)."""
    urls = []
    for i in range(salt, salt + count):
        x, y, w, h = i % 8, (i // 8) % 8, 2 + (i // 64) % 7, 2 + (i // 448) % 7
        urls.append(data_url(png_bytes((16, 16), (x, y, x + w, y + h), background=0, ink=255)))
    assert len(set(urls)) == count
    return urls


def write_pngs(folder: Path, count: int) -> list[str]:
    """`count` 24x24 PNGs, each with a white square somewhere else; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        offset = index % 12
        box = (offset, offset, offset + 8, offset + 8)
        name = f"item-{index}.png"
        (folder / name).write_bytes(png_bytes((24, 24), box, background=0, ink=255))
        names.append(name)
    return names
