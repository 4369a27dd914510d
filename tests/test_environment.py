"""Binder's environment.yml stays in step with the pinned CI environment."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names whose Python distribution is called differently
CONDA_TO_PIP = {"pytorch-cpu": "torch", "matplotlib-base": "matplotlib"}


def _environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_structure():
    env = _environment()
    assert set(env) == {"name", "channels", "dependencies"}
    assert env["channels"] == ["conda-forge", "nodefaults"], "Binder must resolve from conda-forge only"
    assert all(isinstance(d, str) for d in env["dependencies"]), "no pip: section; every package from conda-forge"
    pinned = [d for d in env["dependencies"] if d != "pip"]
    assert all("=" in d for d in pinned), f"unpinned packages: {[d for d in pinned if '=' not in d]}"
    assert "python=3.11" in pinned
    assert any(d.startswith("pytorch-cpu=") for d in pinned), "Binder needs the CPU build of PyTorch"
    assert not any(d.split("=")[0] in ("pytorch", "torchvision", "pytorch-gpu") for d in pinned)


def test_pins_match_the_installed_ci_environment():
    mismatched = []
    for dep in _environment()["dependencies"]:
        if dep == "pip":
            continue
        name, pinned = dep.split("=", 1)
        if name == "python":
            installed = f"{sys.version_info.major}.{sys.version_info.minor}"
        else:
            try:
                installed = version(CONDA_TO_PIP.get(name, name)).split("+")[0]
            except PackageNotFoundError:
                installed = "not installed"
        if installed != pinned:
            mismatched.append(f"{name}: environment.yml {pinned}, CI {installed}")
    assert not mismatched, "; ".join(mismatched)


def test_requirements_and_environment_agree():
    requirements = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, pinned = line.split("==")
            requirements[name.lower()] = pinned
    for dep in _environment()["dependencies"]:
        name, _, pinned = dep.partition("=")
        pip_name = CONDA_TO_PIP.get(name, name)
        if pip_name in requirements:
            assert requirements[pip_name] == pinned, f"{name}: requirements.txt {requirements[pip_name]}, env {pinned}"


def test_postbuild_installs_the_library():
    text = (ROOT / "postBuild").read_text()
    assert "pip install --no-deps -e ." in text
