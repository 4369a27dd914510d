"""The book's studies: the evaluation protocol, tuning studies, reports, statistics and the experiments behind
``results/*.json``. It imports :mod:`recon` and is never imported by it; it is not part of the installed library."""
