"""Execute the book's notebooks in place with papermill, each under a timeout and retried once.

    python scripts/run_notebooks.py [notebooks/01_measurements.ipynb ...] [--timeout 600]

papermill can hang on a lost kernel message and still exit 0, so each run goes to a temporary file under a wall-clock
timeout, and the result replaces the notebook only if every code cell ran and none raised. The default timeout is
over three times the slowest notebook's time on a 2-core AVX2-only CPU (the slowest machine the book is built on);
`make book NOTEBOOK_TIMEOUT=...` raises it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 600.0  # seconds per notebook and attempt; keep equal to NOTEBOOK_TIMEOUT in the Makefile


def problems(path: Path) -> list[str]:
    """What is wrong with an executed notebook: cells not run, or errors raised."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if cell.get("execution_count") is None:
            found.append(f"cell {i} was not executed")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {i} raised {output.get('ename')}: {output.get('evalue')}")
    return found


def run_once(notebook: Path, timeout: float) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / notebook.name
        cmd = [sys.executable, "-m", "papermill", str(notebook), str(out), "--kernel", "python3",
               "--cwd", str(notebook.parent), "--no-progress-bar", "--log-level", "WARNING"]
        try:
            result = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True, check=False)
        except subprocess.TimeoutExpired:
            raise_to = int(2 * timeout)
            return [(f"timed out after {timeout:.0f} s; on a slow machine raise the limit with `make book "
                    f"NOTEBOOK_TIMEOUT={raise_to}` (or --timeout {raise_to})")]
        if result.returncode != 0:
            return [f"papermill exited {result.returncode}: {result.stderr.strip()[-2000:]}"]
        if not out.exists():
            return ["papermill wrote no output"]
        found = problems(out)
        if not found:
            shutil.copyfile(out, notebook)
        return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per attempt")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    failed = False
    for notebook in notebooks:
        for attempt in (1, 2):
            start = time.perf_counter()
            found = run_once(notebook.resolve(), args.timeout)
            took = time.perf_counter() - start
            if not found:
                print(f"ran {notebook.name} in {took:.0f} s" + (" (second attempt)" if attempt == 2 else ""))
                break
            print(f"{notebook.name}, attempt {attempt}: " + "; ".join(found), file=sys.stderr, flush=True)
        else:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
