"""``python -m recon.train``: the command line of :mod:`recon.cli.train` (see its help).

``from recon.train import main`` calls it from Python as before; the program itself lives in :mod:`recon.cli.train`.
"""

from recon.cli.train import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
