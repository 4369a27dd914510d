"""Every measured number in the book's chapters is glued from a notebook: a decibel value typed into the prose can
only be a round goal or threshold ("at least 2 dB", "within 0.5 dB"), never a measurement such as "35.49 dB"."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK, NOTEBOOKS = ROOT / "book", ROOT / "notebooks"
GLUE = re.compile(r"\{glue:[a-z]+\}`[^`]*`")
DECIBELS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?dB\b")


def typed_decibels(text: str) -> list[str]:
    """The dB values written in ``text`` outside glue roles that are not round (a whole number or a half)."""
    text = GLUE.sub("", text)
    return [m.group(0) for m in DECIBELS.finditer(text) if float(m.group(1)) * 2 != int(float(m.group(1)) * 2)]


def test_the_check_tells_a_typed_measurement_from_a_goal():
    assert typed_decibels("TV reached 35.49 dB, 2 dB short of the goal") == ["35.49 dB"]
    assert typed_decibels("within 0.5 dB; {glue:text}`nb.ipynb::psnr:.2f` dB; 3 dB") == []


def test_no_chapter_types_a_measured_decibel_value():
    typed = {page.name: found for page in sorted(BOOK.glob("*.md")) if (found := typed_decibels(page.read_text()))}
    assert not typed, f"glue these from their notebooks instead of typing them: {typed}"


def test_no_notebook_text_types_a_measured_decibel_value():
    typed = {}
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        if found := typed_decibels(text):
            typed[notebook.name] = found
    assert not typed, f"glue these (or print them from a cell) instead of typing them: {typed}"
