"""The lam/snr study: it runs, stores to SQLite, resumes without redoing trials, and is seeded."""

from __future__ import annotations

import torch

from recon.operators import GaussianCS
from recon.tuning import tune_proximal
from test_sampling import gaussian_problem


def test_study_resumes_from_sqlite(tmp_path):
    op, prior, x_true, _, _ = gaussian_problem()
    images = x_true.float().expand(3, -1, -1, -1).contiguous()
    db = tmp_path / "study.sqlite"
    first = tune_proximal(op, images, prior, storage=db, study_name="t", n_trials=3, steps=4, noise_level=0.01)
    assert len(first.trials) == 3 and db.exists()
    first_params = [t.params for t in first.trials]
    again = tune_proximal(op, images, prior, storage=db, study_name="t", n_trials=5, steps=4, noise_level=0.01)
    assert len(again.trials) == 5
    assert [t.params for t in again.trials[:3]] == first_params
    assert all(0 <= t.params["lam"] <= 1 and "residual" in t.user_attrs for t in again.trials)
    assert isinstance(op, GaussianCS) and torch.isfinite(torch.tensor(again.best_value))
