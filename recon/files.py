"""Files the library writes and checks: content hashes, atomic writes (a kill leaves the old file or the new one, never
half of one), and the marker that says a folder holds the library's own outputs (so that no reader takes them for
input data)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# Written into every folder the programs write (a trained prior, a reconstruction): the folder reader skips such
# folders, so a reconstruction saved inside a data folder never becomes a training or test image.
OUTPUT_MARKER = ".recon-output"


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, flush it to disk, then rename it onto ``path`` (same folder, so the rename is
    atomic): a reader or a kill sees the old file or the whole new one. The temporary file is removed on failure."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from the group a plain open shares with
    try:
        write(temporary)
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return path


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """``path.write_text(text)``, atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_text(text))


def mark_output(folder: str | Path) -> Path:
    """Create ``folder`` (and parents) and mark it as the library's output (:data:`OUTPUT_MARKER`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / OUTPUT_MARKER
    if not marker.exists():
        marker.write_text("written by recon; the folder reader skips this folder\n")
    return folder


def is_output(folder: str | Path) -> bool:
    """Whether ``folder`` holds the library's own outputs."""
    return (Path(folder) / OUTPUT_MARKER).exists()
