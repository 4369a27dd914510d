"""``python -m recon.reconstruct``: the command line of :mod:`recon.cli.reconstruct` (see its help).

This module only runs the command. Import :mod:`recon.cli.reconstruct` to call it from Python: importing this module
would shadow the function :func:`recon.reconstruct` with the module of the same name.
"""

if __name__ == "__main__":
    import sys

    from recon.cli.reconstruct import main

    main(sys.argv[1:])
