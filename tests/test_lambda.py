"""The lam ablation and a lam/snr study (SQLite, resumable, seeded)."""

from __future__ import annotations

import torch
from test_sampling import gaussian_problem

from recon.operators import GaussianCS
from recon.operators.noise import RelativeGaussian
from recon.tuning import tune_method
from studies.ablation import lambda_sweep


def test_study_resumes_from_sqlite(tmp_path):
    op, prior, x_true, _, _ = gaussian_problem()
    images = x_true.float().expand(3, -1, -1, -1).contiguous()
    db = tmp_path / "study.sqlite"
    options = {"noise": RelativeGaussian(0.01), "fixed": {"steps": 4, "sampler": "pc"}, "name": "t", "storage": db}
    first = tune_method("proximal_ddrm", op, images, prior, n_trials=3, **options)
    assert len(first.trials) == 3 and db.exists() and set(first.best) == {"lam", "snr"}
    again = tune_method("proximal_ddrm", op, images, prior, n_trials=5, **options)
    assert len(again.trials) == 5
    params = lambda trials: [{k: t[k] for k in ("lam", "snr")} for t in trials]
    assert params(again.trials[:3]) == params(first.trials)
    assert all(0 <= t["lam"] <= 1 and "residual" in t for t in again.trials)
    assert isinstance(op, GaussianCS) and torch.isfinite(torch.tensor(again.value))


def test_lambda_sweep_is_one_batch_and_lambda_controls_the_data_fit():
    op, prior, x_true, _, _ = gaussian_problem(size=8, m=20)  # SSIM needs 7x7 windows
    images = torch.cat([x_true, x_true + 0.05]).float()
    sweep = lambda_sweep(op, images, prior, [0.0, 0.5, 1.0], steps=20, seed=3)
    assert sweep.recons.shape == (3, 2, 1, 8, 8) and sweep.psnr.shape == (3, 2) and sweep.realism.shape == (3, 2)
    # lam = 0 ignores the data, lam = 1 fits it (up to the last level's y_t noise)
    assert (sweep.residual[2] < 0.1 * sweep.residual[0]).all()
    assert (sweep.psnr[2] > sweep.psnr[0]).all()


def test_the_lambda_study_tunes_with_the_search_it_is_given(monkeypatch):
    from recon.tuning import Tuned
    from studies import experiments, protocol

    seen = []

    def record(task, choices, **options):  # the protocol's tuner, without tuning
        seen.append(options["search"])
        return {m: Tuned(c.method, dict(c.options), {"lam": 1.0, "snr": 0.1}, 0.0, [], [], 0, "grid")
                for m, c in choices.items()}

    monkeypatch.setattr(protocol, "tune_all", record)
    task = next(t for t in protocol.tasks() if t.key == "CT, 16 views|noise-free|test")
    monkeypatch.setattr(experiments, "lambda_tasks", lambda seed: {task.key: task})
    monkeypatch.setattr(experiments, "load_priors", lambda: {"head_ct": None})
    monkeypatch.setattr(protocol, "reconstruct_row", lambda data, choice, seed: (None, type("R", (), {"psnr": [1.0]})))
    monkeypatch.setattr(protocol, "measured", lambda task, n, seed: None)
    out = experiments.lambda_study(search="protocol")
    assert seen == ["protocol"] and out["studies"][task.key]["best"] == {"lam": 1.0, "snr": 0.1}
