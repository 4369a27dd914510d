"""Put the checkout on the environment's import path (a .pth file), so that the book's ``studies`` package, which is
not part of the installed library, imports from the notebooks and scripts as ``recon`` does."""

import sysconfig
from pathlib import Path

root = Path(__file__).resolve().parent.parent
target = Path(sysconfig.get_paths()["purelib"]) / "recon_book_studies.pth"
target.write_text(f"{root}\n")
print(f"studies: {target} -> {root}")
