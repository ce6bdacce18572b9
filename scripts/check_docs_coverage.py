"""Check that no fact of an earlier README is missing from the built documentation site.

Issue #18 moved the 1,530-line README into the site. This script renders the old README (from
git, `--old-rev`) and the built site (`--site`, from `mkdocs build`) to text, cuts the old
README into units (each paragraph, list item, table cell, heading and line of code), and looks
each unit up in the site's text: first whole, then sentence by sentence. It also checks every
command-line option (`--name`), every number and every code span on its own. What is not found
verbatim is printed for review (a reworded sentence is fine when its facts are elsewhere; a
missing option or number needs a look). Module names are compared after the renames of issue
#18 (the docs use the new names). Exit status 1 when any option, number or code span is missing.

    python scripts/check_docs_coverage.py --old-rev bdf799a --site site
"""

from __future__ import annotations

import argparse
import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import markdown

# The renames of issue #18 (docs/DESIGN.md's map): old text -> text the docs use now.
RENAMES = (
    ("medbench.models.reference_server", "medbench.models.builtin.server"),
    ("medbench.models.fault_proxy", "medbench.testing.fault_proxy"),
    ("medbench.environment.setup", "medbench.environment.provision"),
    ("medbench/types.py", "medbench/outcomes.py"),
    ("medbench/replay.py", "medbench/cassettes/files.py"),
    ("fixtures/", "medbench/data/"),
    ("scripts/visualize.py", "scripts/visualize_benchmarks.py"),
    ("scripts/analyze.py", "scripts/analyze_benchmarks.py"),
)

BLOCKS = {"p", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "dd", "dt"}
SKIPPED = {"script", "style", "nav", "header", "footer", "svg"}


class TextUnits(HTMLParser):
    """Text of an HTML page cut at block elements; code blocks cut at lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.units: list[tuple[str, str]] = []  # (kind, text)
        self.buffer: list[str] = []
        self.stack: list[str] = []
        self.skipping = 0

    def flush(self) -> None:
        text = "".join(self.buffer)
        self.buffer = []
        if "pre" in self.stack:
            self.units += [("code", line.strip()) for line in text.splitlines() if line.strip()]
        elif text.strip():
            self.units.append(("text", normalise(text)))

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        if tag in BLOCKS:
            self.flush()
        if tag == "a" and any(name == "class" and value and "headerlink" in value for name, value in attrs):
            self.skipping += 1
            self.stack.append("headerlink")
            return
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self.flush()
        while self.stack:
            top = self.stack.pop()
            if top == "headerlink":
                self.skipping -= 1
                if tag == "a":
                    break
                continue
            if top == tag:
                break
        if tag in SKIPPED:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.buffer.append(data)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def units_of(page_html: str) -> list[tuple[str, str]]:
    parser = TextUnits()
    parser.feed(page_html)
    parser.flush()
    return parser.units


def site_text(site: Path) -> str:
    """The article text of every page of the built site, whitespace-normalised, one blob."""
    texts = []
    for page in sorted(site.rglob("*.html")):
        if page.parts[len(site.parts)] in {"assets", "search"}:
            continue
        content = page.read_text(encoding="utf-8")
        article = re.search(r"<article[^>]*>(.*)</article>", content, re.S)
        units = units_of(article.group(1) if article else content)
        texts.append("\n".join(text for _, text in units))
    return "\n".join(texts)


def renamed(text: str) -> str:
    for old, new in RENAMES:
        text = text.replace(old, new)
    return text


def sentences(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.;:!?])\s+(?=[A-Z`(\"*])", text) if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rev", required=True, help="git revision whose README.md is the old manual")
    parser.add_argument("--site", type=Path, required=True, help="the built site (mkdocs build -d DIR)")
    parser.add_argument("--verbose", action="store_true", help="also list reworded sentences")
    args = parser.parse_args()

    old_markdown = subprocess.run(
        ["git", "show", f"{args.old_rev}:README.md"], check=True, capture_output=True, text=True
    ).stdout
    old_html = markdown.markdown(renamed(old_markdown), extensions=["tables", "fenced_code"])
    old_units = units_of(old_html)
    site = site_text(args.site)
    flat_site = normalise(site)
    site_lines = {line.strip() for line in site.splitlines()}

    counts = {"units": 0, "whole": 0, "sentences": 0, "sentences found": 0}
    reworded: list[str] = []
    missing_code: set[str] = set()
    for kind, text in old_units:
        counts["units"] += 1
        if kind == "code":
            if text in site_lines or normalise(text) in flat_site:
                counts["whole"] += 1
            else:
                missing_code.add(text)
            continue
        if text in flat_site:
            counts["whole"] += 1
            continue
        for sentence in sentences(text):
            counts["sentences"] += 1
            if sentence in flat_site:
                counts["sentences found"] += 1
            else:
                reworded.append(sentence)

    old_text = "\n".join(text for _, text in old_units)
    spans = set(re.findall(r"<code>(.*?)</code>", old_html, re.S))
    tokens = {
        "options": set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", old_text)),
        "numbers": set(re.findall(r"(?<![\w.])\d[\d,.]*\d%?|(?<![\w.])\d%?(?![\w])", old_text)),
        "code spans": {normalise(span) for span in spans},
    }
    missing = {name: sorted(found for found in values if found not in flat_site) for name, values in tokens.items()}

    print(
        f"old README at {args.old_rev}: {counts['units']} units; {counts['whole']} found whole in the site; "
        f"the other {counts['units'] - counts['whole']} split into {counts['sentences']} sentences, "
        f"{counts['sentences found']} found verbatim, {len(reworded)} reworded or moved"
    )
    for name, values in tokens.items():
        print(f"{name}: {len(values)} distinct, {len(missing[name])} not found: {missing[name]}")
    print(f"lines of code blocks not found: {len(missing_code)}")
    for line in sorted(missing_code):
        print(f"  code: {line}")
    if args.verbose:
        for sentence in reworded:
            print(f"  reworded: {sentence}")
    return 1 if any(missing.values()) or missing_code else 0


if __name__ == "__main__":
    sys.exit(main())
