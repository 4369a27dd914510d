"""``python -m recon.tune``: the command line of :mod:`recon.cli.tune` (see its help)."""

if __name__ == "__main__":
    import sys

    from recon.cli.tune import main

    main(sys.argv[1:])
