"""``python -m recon.reconstruct``: the command line of :mod:`recon.cli.reconstruct` (see its help), run through
:func:`recon.cli.errors.run_program` (an expected error is one line and exit status 2).

This module only runs the command. Import :mod:`recon.cli.reconstruct` to call it from Python: importing this module
would shadow the function :func:`recon.reconstruct` with the module of the same name.
"""

if __name__ == "__main__":
    import sys

    from recon.cli.errors import run_program
    from recon.cli.reconstruct import PROG, main

    run_program(PROG, main, sys.argv[1:])
