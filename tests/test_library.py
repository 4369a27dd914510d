"""The shape of the installed library: layers that point one way, short functions, a light ``import recon``, and no
import of the book's studies. These are the rules of the README's developer section, checked on the source."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY, STUDIES = ROOT / "recon", ROOT / "studies"
MAX_FUNCTION_LINES = 40

# The library's layers, lowest first: a module may import from its own layer and the ones below it, never above.
LAYERS = [
    {"_checks", "random", "files"},
    {"operators", "data", "metrics"},
    {"sampling"},
    {"models", "provenance"},
    {"guidance", "baselines", "training"},
    {"methods", "solvers"},
    {"reconstruction", "synthesis", "tuning"},
    {"cli", "train", "reconstruct", "tune", "__init__"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def part_of(module: str) -> str:
    """The library part a dotted module belongs to: ``recon.sampling.loops`` -> ``sampling``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imports(path: Path) -> list[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_the_layers_and_never_at_the_studies(path):
    here = part_of(module_name(path))
    assert here in LAYER_OF, f"{here} is in no layer: add it to LAYERS (and to the README's developer section)"
    for target in imports(path):
        top = target.split(".")[0]
        assert top != "studies", f"{path.name} imports {target}: the library never imports the book's studies"
        if top == "recon" and target != "recon":
            there = part_of(target)
            assert LAYER_OF[there] <= LAYER_OF[here], f"{module_name(path)} ({here}) imports {target} ({there}), a " \
                                                      "higher layer: move the shared piece down, or the import up"


def code_lines(function: ast.FunctionDef) -> int:
    """A function's lines less its docstring (a doctest is documentation, not code)."""
    lines = function.end_lineno - function.lineno + 1
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


@pytest.mark.parametrize("package", [LIBRARY, STUDIES], ids=["recon", "studies"])
def test_no_function_is_longer_than_forty_lines(package):
    long = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({code_lines(node)} lines)"
            for path in sorted(package.rglob("*.py")) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code_lines(node) > MAX_FUNCTION_LINES]
    assert long == [], "split these functions: " + "; ".join(long)


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_says_what_it_owns(path):
    if path.name == "__init__.py" and not path.read_text().strip():
        return
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(ROOT)} needs a module docstring"


def test_import_recon_is_light():
    """``import recon`` loads no plotting, tuning, privacy or study package (and not even torch until a name is used);
    its time is measured by benchmarks/import_time.py, not here."""
    probe = ("import sys, recon; heavy = ('torch', 'matplotlib.pyplot', 'optuna', 'opacus', 'sklearn', 'studies'); "
             "print(','.join(m for m in heavy if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "", f"import recon loaded {loaded.stdout.strip()}"


def test_public_names_resolve():
    import recon

    missing = [name for name in recon.__all__ if not hasattr(recon, name)]
    assert missing == []
    with pytest.raises(AttributeError, match="no attribute 'evaluation'"):
        recon.evaluation  # noqa: B018 (the book's studies moved out of the library)
