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


def pasted(text_plain: str, spec: str = "") -> str:
    """What ``{glue:text}`` shows for a glued value's text/plain (myst-nb literal-evaluates it first)."""
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(text_plain, spec)


def test_glued_words_are_pasted_as_they_are():
    from studies.plotting import Phrase

    for words in ("[+0.52, +0.95]", "0.50", "10, 30, 60", "met", "1e-05", "'quoted'"):
        assert pasted(repr(Phrase(words))) == words
        assert pasted(repr(Phrase(words)), "s") == words


def test_every_stored_glue_value_is_pasted_as_it_was_printed():
    changed = {}
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                data = output.get("data", {})
                text = data.get("text/plain", data.get("application/papermill.record/text/plain"))
                if name is None or text is None:
                    continue
                text = "".join(text) if isinstance(text, list) else text
                if not text.startswith(("'", '"')) and pasted(text) != text:
                    changed[f"{notebook.name}::{name}"] = (text, pasted(text))
    assert not changed, f"glue these as studies.plotting.Phrase (and re-execute the notebook): {changed}"
