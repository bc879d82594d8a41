"""MkDocs hooks: keep the reference complete and the changelog single-sourced.

Every name in `nexus_async.__all__` and `nexus_async.server.__all__` gets an entry: the
reference pages list them in a chosen order, and a name exported later but not yet
listed is appended to the page of its kind (an error, a model, or the client page for
anything else) rather than left out. `changelog.md` shows the repository's
`CHANGELOG.md`, so there is one changelog.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_ENTRY = re.compile(r"^::: ([\w.]+)", re.MULTILINE)
# Each package's names, and the page that takes a name of each kind.
PACKAGES = {
    "nexus_async": {
        "errors": "reference/errors.md",
        "models": "reference/models.md",
        "options": "reference/options.md",
        None: "reference/client.md",
    },
    "nexus_async.server": {None: "reference/server.md"},
}
_listed: set[str] = set()


def _kind(package: str, name: str) -> str | None:
    """The submodule (`errors`, `models`, `options`) that defines `package.name`, if any."""
    obj = getattr(importlib.import_module(package), name)
    for submodule in PACKAGES[package]:
        if submodule is None:
            continue
        module = importlib.import_module(f"{package}.{submodule}")
        if getattr(module, name, None) is obj:
            return submodule
    return None


def on_files(files: Any, config: Any) -> Any:
    """Note which names the reference pages already list."""
    _listed.clear()
    for file in files:
        if file.src_uri.startswith("reference/"):
            _listed.update(_ENTRY.findall(file.content_string))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Append unlisted public names to their page; fill the changelog page."""
    uri = page.file.src_uri
    if uri == "changelog.md":
        return (ROOT / "CHANGELOG.md").read_text()
    extra = []
    for package, pages in PACKAGES.items():
        names = importlib.import_module(package).__all__
        for name in names:
            if f"{package}.{name}" in _listed or name.startswith("__"):
                continue
            if pages.get(_kind(package, name), pages[None]) == uri:
                extra.append(f"::: {package}.{name}\n")
    if extra:
        markdown += "\n## Also exported\n\n" + "\n".join(extra)
    return markdown
