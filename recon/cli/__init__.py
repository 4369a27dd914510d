"""Command-line programs: ``python -m recon.train`` (:mod:`recon.cli.train`), ``python -m recon.reconstruct``
(:mod:`recon.cli.reconstruct`) and ``python -m recon.tune`` (:mod:`recon.cli.tune`). Each parses its command line once
into a frozen options object (:class:`~recon.cli.train.TrainOptions`, :class:`~recon.cli.reconstruct.ReconstructOptions`,
:class:`~recon.cli.tune.TuneOptions`) and passes it down; what a run derives travels beside it, never written into
it."""
