"""Which files under a data folder are read, and which entries are left out and why.

* Hidden files and folders (a name starting with ``.``: ``.git``, ``.DS_Store``) are not looked at.
* A file the reader does not take (a JPEG, a TIFF, a text file) is listed with :data:`NOT_WANTED`.
* A folder holding :data:`recon.files.OUTPUT_MARKER` holds the library's own outputs (a reconstruction's
  ``truth.npy`` and PNGs, a trained prior): it is skipped whole and listed, so that no output ever becomes an input.
  Only the marker counts; output file names in an unmarked folder are read like any others.
* Symbolic links, to files or folders, are followed (data sets managed by DataLad or git-annex are links) and the
  links followed are returned; a link to a folder or file already reached (a loop, or a second route to the same
  images) is skipped and listed, so that no image is read twice.
* A name holding a control or other invisible character (a newline, a tab, bytes that are not text) is skipped and
  listed with the character escaped: such a name would become a patient identifier no one can read or type.

>>> printable("p3\\n")
'p3\\\\n'
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable
from pathlib import Path

from recon.files import OUTPUT_MARKER, is_output


def invisible(character: str) -> bool:
    """Whether ``character`` is a control, format, surrogate or unassigned character (Unicode category C)."""
    return unicodedata.category(character).startswith("C")


def printable(text: str) -> str:
    """``text`` with its invisible characters escaped as Python writes them (a newline shows as ``\\n``)."""
    return "".join(repr(c)[1:-1] if invisible(c) else c for c in text)


@dataclasses.dataclass
class Found:
    """The files to read (sorted, as reached under the root), the entries left out (``{"file", "reason"}``) and the
    symbolic links followed (``{"link", "target"}``)."""

    files: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[dict] = dataclasses.field(default_factory=list)
    links: list[dict] = dataclasses.field(default_factory=list)


def left_out_entry(entry: Path, seen: dict[Path, Path]) -> str | None:
    """Why ``entry`` (a file or folder under the root) is left out, or None if it is read; ``seen`` maps the real
    path of every folder and file reached so far to where it was reached."""
    if any(invisible(c) for c in entry.name):
        return "its name holds a control or invisible character (shown escaped); rename it to use it"
    if not entry.exists():
        return f"a broken symbolic link (to {printable(str(entry.readlink()))}); fix or remove it"
    target = entry.resolve()
    if target in seen:
        return (f"a symbolic link to {printable(str(target))}, already read as {printable(str(seen[target]))}; "
                "skipped so that no image is read twice")
    if entry.is_dir() and is_output(entry):
        return f"holds recon's outputs (marker {OUTPUT_MARKER}); skipped"
    return None


NOT_WANTED = "not a file this reader takes (DICOM, NIfTI .nii/.nii.gz, greyscale PNG, .npy); convert it to use it"


def visit(folder: Path, root: Path, found: Found, seen: dict[Path, Path], wanted: Callable[[Path], bool]) -> None:
    """Add the files under ``folder`` that ``wanted(path)`` accepts to ``found`` (depth first, in name order)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        found.skipped.append({"file": printable(f"{folder.relative_to(root)}/"),
                              "reason": f"cannot be listed ({type(error).__name__}: {error.strerror})"})
        return
    for entry in entries:
        if entry.name.startswith(".") or not (entry.is_dir() or entry.is_file() or entry.is_symlink()):
            continue
        relative = entry.relative_to(root)
        if not entry.is_dir() and entry.exists() and not wanted(entry):
            found.skipped.append({"file": printable(str(relative)), "reason": NOT_WANTED})
            continue
        reason = left_out_entry(entry, seen)
        if reason is not None:
            found.skipped.append({"file": printable(str(relative)) + ("/" if entry.is_dir() else ""),
                                  "reason": reason})
            continue
        seen[entry.resolve()] = relative
        if entry.is_symlink():
            found.links.append({"link": str(relative), "target": str(entry.resolve())})
        if entry.is_dir():
            visit(entry, root, found, seen, wanted)
        else:
            found.files.append(entry)


def find_files(root: Path, wanted: Callable[[Path], bool]) -> Found:
    """The files under ``root`` that ``wanted(path)`` accepts, and the entries left out (see the module
    docstring); ``root`` itself is read whatever it holds."""
    root = Path(root)
    found = Found()
    visit(root, root, found, {root.resolve(): Path(".")}, wanted)
    found.files.sort()
    return found
