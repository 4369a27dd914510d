"""The findings page is the book in one page: it links every chapter of ``_toc.yml`` that a finding rests on, so a
reader who opens only it can reach each of them."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = "book/findings"
EXEMPT = {
    "book/intro": "the root page, from which a reader arrives at the findings",
    "book/own_data": "a how-to for the reader's own images; no finding rests on it",
    "book/glossary": "reached through the term links; it holds no finding",
    "book/references": "the bibliography, reached through the citations",
}
EXEMPT_FOLDERS = {"notebooks/": "each chapter links its own notebooks; the findings point to the chapters"}
DOC = re.compile(r"\{doc\}`(?:[^`<]*<)?([^`<>]+)>?`")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+?)(?:\.md|\.ipynb)(?:#[^)]*)?\)")


def chapters() -> list[str]:
    """Every page of ``_toc.yml``, root first, as a path from the repository root without its suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [chapter["file"] for part in toc["parts"] for chapter in part["chapters"]]


def linked(text: str, page: str = FINDINGS) -> set[str]:
    """The pages that ``text``, the source of ``page``, links by ``{doc}`` or by a Markdown link."""
    targets = DOC.findall(text) + MARKDOWN_LINK.findall(text)
    return {posixpath.normpath(posixpath.join(posixpath.dirname(page), target.strip())) for target in targets}


def unlinked(text: str) -> list[str]:
    """The chapters of ``_toc.yml`` that the findings page should link and ``text`` does not."""
    return [page for page in chapters() if page != FINDINGS and page not in EXEMPT
            and not page.startswith(tuple(EXEMPT_FOLDERS)) and page not in linked(text)]


def test_the_check_reads_both_link_forms_and_misses_a_removed_link():
    assert linked("{doc}`lambda`, {doc}`the primer <diffusion_primer>`, [notebook 2](../notebooks/02_prior.ipynb)"
                  " and [data](data.md)") == {"book/lambda", "book/diffusion_primer", "notebooks/02_prior", "book/data"}
    text = (ROOT / f"{FINDINGS}.md").read_text()
    assert unlinked(text.replace("{doc}`lambda`", "the λ chapter")) == ["book/lambda"]


def test_the_exemptions_are_chapters_of_the_book():
    assert set(EXEMPT) <= set(chapters())


def test_findings_link_every_chapter():
    missing = unlinked((ROOT / f"{FINDINGS}.md").read_text())
    assert not missing, f"book/findings.md links none of {missing}: point to each where a finding refers to it"
