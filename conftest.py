"""pytest at the repository root: keep the command-line shim out of doctest collection (importing it would shadow
the function recon.reconstruct with the module of the same name)."""

collect_ignore = ["recon/reconstruct.py"]
