"""Command-line programs: ``python -m recon.reconstruct`` (:mod:`recon.cli.reconstruct`) and ``python -m
recon.tune`` (:mod:`recon.cli.tune`)."""
