"""README.md is the front page and docs/ holds the guides: every relative link lands on a file, and on a
heading of that file where it names one (GitHub's anchors); the front page stays short and links every
guide. Pure: it reads the Markdown files and nothing else."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *GUIDES]
FRONT_PAGE_MAX_LINES = 260

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[([^\[\]]*)\]\(\s*<?([^()\s<>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def prose(text: str) -> str:
    """The text outside fenced code blocks (those lines blanked, so line numbers stay)."""
    lines, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            lines.append("")
        elif fence is not None:
            if m and m.group(1).startswith(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links by their text, code spans by their content),
    lowercased, punctuation but - and _ dropped, each space a -."""
    text = LINK.sub(lambda m: m.group(1), heading)
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(text).split("\n"):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link and image outside code."""
    body = prose(text)
    # a code span's text is no link (and keeps its newlines, so line numbers stay)
    body = CODE_SPAN.sub(lambda m: m.group(1) + re.sub(r"[^\n]", "x", m.group(2)) + m.group(1), body)
    return [(body.count("\n", 0, m.start()) + 1, m.group(2)) for m in LINK.finditer(body)]


def broken_links(page: Path) -> list[str]:
    problems = []
    for line, target in links(page.read_text(encoding="utf-8")):
        if not target or SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        where = f"{page.relative_to(page.parent.parent) if page.parent != ROOT else page.name}:{line}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor:
            if dest.suffix != ".md" or not dest.is_file():
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif unquote(anchor).lower() not in anchors(dest.read_text(encoding="utf-8")):
                problems.append(f"{where}: {dest.name} has no heading with the anchor #{anchor}")
    return problems


def test_there_are_guides():
    assert GUIDES, "docs/ holds no guide"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_and_heading(page):
    assert broken_links(page) == []


def test_the_front_page_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= FRONT_PAGE_MAX_LINES, f"README.md has {n} lines: move the detail to a guide in docs/"


def test_the_front_page_links_every_guide():
    readme = ROOT / "README.md"
    linked = {(readme.parent / unquote(t.partition("#")[0])).resolve()
              for _, t in links(readme.read_text(encoding="utf-8")) if t and not SCHEME.match(t)}
    assert [g.name for g in GUIDES if g.resolve() not in linked] == []


def test_slugs_are_githubs():
    assert slug("The answer key: `gabarito ask`") == "the-answer-key-gabarito-ask"
    assert slug("OpenAI's hosted fine-tuning") == "openais-hosted-fine-tuning"
    assert slug("Several GPUs: DDP, or FSDP with QLoRA") == "several-gpus-ddp-or-fsdp-with-qlora"
    assert slug("SmolLM2-135M-Instruct, offline: `make profile PROFILE=small`") == \
        "smollm2-135m-instruct-offline-make-profile-profilesmall"
    assert slug("Questão 1 e o [gabarito](x.md)") == "questão-1-e-o-gabarito"
    assert anchors("# A\n\n## A\n\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A section: `x`\n")
    page.write_text("# Page\n\n[ok](other.md#a-section-x) [ok too](#page) [web](https://example.org/#x)\n"
                    "[gone](missing.md) [no anchor](other.md#nope)\n[`code`](#nowhere)\n\n"
                    "```\n[in code](missing.md)\n```\n`[in a span](missing.md)`\n")
    problems = broken_links(page)
    assert len(problems) == 3
    assert "missing.md: no such file" in problems[0] and "#nope" in problems[1] and "#nowhere" in problems[2]
