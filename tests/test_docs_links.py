"""Every relative link in the README, the changelog and docs/*.md leads somewhere.

A link's file must exist (relative to the page that holds it), and a ``#anchor`` into a
Markdown page must be the GitHub slug of one of that page's headings. Links inside code
(fenced blocks, indented blocks, inline code) are not links and are skipped, and so are
absolute URLs.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target), with an optional "title".
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced and indented code blocks."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    previous_blank = True
    for number, line in enumerate(text.splitlines(), start=1):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        # An indented code block starts after a blank line; list items' continuation lines
        # are indented too, but they follow text, not a blank line and four spaces of code.
        if previous_blank and line.startswith("    ") and not line.lstrip().startswith(("-", "*")):
            continue
        previous_blank = not line.strip()
        lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped,
    spaces as hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("*", "")  # emphasis markers
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's -1, -2 … for repeated headings."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link on the page outside code."""
    found: list[tuple[int, str]] = []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        prose = INLINE_CODE.sub("", line)
        found.extend((number, m.group(1)) for m in INLINE_LINK.finditer(prose))
        reference = REFERENCE.match(prose)
        if reference:
            found.append((number, reference.group(1)))
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """One line per link of ``page`` that leads nowhere, naming the page relative to root."""
    problems: list[str] = []
    for number, target in links(page):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # an absolute URL: not ours to check offline
        path_part, _, fragment = target.partition("#")
        where = f"{page.relative_to(root)}:{number}: {target}"
        resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if fragment and resolved.suffix == ".md" and unquote(fragment) not in anchors(resolved):
            problems.append(f"{where}: no heading with anchor #{fragment}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert page.exists(), f"{page.relative_to(ROOT)} is missing"
    problems = broken_links(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_docs_pages_are_found() -> None:
    assert len(PAGES) > 3, "docs/*.md not found: the link check would check nothing"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Docker Compose (one host)", "docker-compose-one-host"),
        ("Access: export", "access-export"),
        ("`/forget`", "forget"),
        ("[Unreleased]", "unreleased"),
        ("[0.1.0] - 2026-12-03", "010---2026-12-03"),
        ("From a revision before 3 December 2026", "from-a-revision-before-3-december-2026"),
        ("Trying a file: `routing explain`", "trying-a-file-routing-explain"),
    ],
)
def test_slugs_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_and_a_broken_anchor_are_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#a-section) [missing](nowhere.md) [bad anchor](other.md#no-section)\n"
        "[here](#page) [not here](#elsewhere) [web](https://example.com/x.md)\n\n"
        "```\n[in code](nowhere.md)\n```\n\n"
        "`[inline code](nowhere.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "page.md:3: nowhere.md: no such file",
        "page.md:3: other.md#no-section: no heading with anchor #no-section",
        "page.md:4: #elsewhere: no heading with anchor #elsewhere",
    ]
