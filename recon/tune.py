"""``python -m recon.tune``: the command line of :mod:`recon.cli.tune` (see its help), run through
:func:`recon.cli.errors.run_program` (an expected error is one line and exit status 2)."""

if __name__ == "__main__":
    import sys

    from recon.cli.errors import run_program
    from recon.cli.tune import PROG, main

    run_program(PROG, main, sys.argv[1:])
