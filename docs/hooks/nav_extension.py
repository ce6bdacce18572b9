"""mkdocs hook: every page in docs/ is reachable from the navigation.

Feature pages are added by several people (`docs/<topic>.md`); one that is not yet listed in
`nav` of mkdocs.yml is appended under "More topics" instead of being left out of the site's
menu. Listing it in `nav` (one line, under the section it belongs to) gives it its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SECTION = "More topics"
GENERATED = {"options.md"}  # written by options_page.py, never on disk


def _listed(entries: Any) -> set[str]:
    """Every page path named anywhere in a nav tree (strings, {title: path}, {title: [...]})."""
    found: set[str] = set()
    if isinstance(entries, str):
        found.add(entries)
    elif isinstance(entries, list):
        for entry in entries:
            found |= _listed(entry)
    elif isinstance(entries, dict):
        for value in entries.values():
            found |= _listed(value)
    return found


def unlisted_pages(docs_dir: Path, nav: list[Any]) -> list[str]:
    """Markdown pages under docs_dir (outside hooks/) that nav does not name, sorted."""
    listed = _listed(nav) | GENERATED
    pages = (path.relative_to(docs_dir).as_posix() for path in docs_dir.rglob("*.md"))
    return sorted(page for page in pages if page not in listed and not page.startswith("hooks/"))


def on_config(config: Any) -> Any:
    nav = config.get("nav")
    if nav:
        extra = unlisted_pages(Path(config["docs_dir"]), nav)
        if extra:
            nav.append({SECTION: extra})
    return config
