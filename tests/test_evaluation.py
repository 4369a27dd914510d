"""The evaluation protocol's statistics: bootstrap intervals that cover, ties called ties, calibrated uncertainty."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_sampling import gaussian_problem

from recon.guidance import ProximalGuide
from recon.sampling import get_sigmas_karras, sample_em
from studies.statistics import holm, paired_difference, unpaired_difference
from studies.uncertainty import posterior_samples, summarize


def test_the_bootstrap_interval_covers_the_true_difference_and_calls_ties():
    rng = np.random.default_rng(0)
    covered, ties = 0, 0
    for _ in range(200):
        b = rng.normal(30, 2, size=32)
        a = b + rng.normal(0.3, 1.0, size=32)  # method a is 0.3 dB better on average
        result = paired_difference(a, b, n_resamples=999, seed=1)
        covered += result.low <= 0.3 <= result.high
        same = b + rng.normal(0.0, 1.0, size=32)
        ties += paired_difference(same, b, n_resamples=999, seed=1).verdict == "tie"
    assert 0.90 <= covered / 200 <= 0.99 and ties / 200 >= 0.9
    clear = paired_difference(np.arange(32.0) + 2, np.arange(32.0) + rng.normal(0, 0.1, 32))
    assert clear.verdict == "better" and clear.low > 1.8 and "better" in str(clear)
    assert paired_difference([1.0, 2, 3], [2.0, 3, 4]).verdict == "worse"
    with pytest.raises(ValueError, match="equal length >= 3"):
        paired_difference([1.0, 2.0], [1.0, 2.0])


def test_the_unpaired_interval_covers_the_true_difference_of_two_independent_samples():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(200):
        result = unpaired_difference(rng.normal(31, 2, size=24), rng.normal(30, 1, size=40), n_resamples=999, seed=1)
        covered += result.low <= 1.0 <= result.high
    assert 0.90 <= covered / 200 <= 0.99
    assert unpaired_difference(np.arange(10.0) + 20, np.arange(16.0)).verdict == "better"
    assert unpaired_difference(np.arange(10.0) + 20, np.arange(16.0)).n == 10
    with pytest.raises(ValueError, match="at least 3 values each"):
        unpaired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


def test_holm_adjusts_in_order_and_keeps_the_family_error():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])  # 4x, 3x (then monotone), 2x, 1x
    rng = np.random.default_rng(0)  # 20 true null hypotheses: a false call in at most about 5 % of families
    false_calls = sum(min(holm(rng.uniform(size=20))) <= 0.05 for _ in range(2000))
    assert false_calls / 2000 <= 0.06


def test_an_exact_posterior_sampler_is_calibrated():
    """On a Gaussian prior whose covariance commutes with A^T A, guided EM samples the posterior (test_sampling):
    its 90 % prediction intervals then cover 90 % of the pixels, and the mean of 8 samples beats one sample."""
    op, prior, *_ = gaussian_problem()
    n, k = 400, 8
    g = torch.Generator().manual_seed(3)
    truths = prior.mean + (torch.randn(n, 16, generator=g, dtype=torch.float64)
                           @ torch.linalg.cholesky(prior.cov).T).reshape(n, 1, 4, 4)
    y = op.A(truths)
    sigmas = get_sigmas_karras(300, 1e-3, 100.0)
    draws = []
    for j in range(k):
        x0 = sigmas[0] * torch.randn(n, 1, 4, 4, generator=g, dtype=torch.float64)
        draws.append(sample_em(prior, x0, sigmas, guide=ProximalGuide(op, y), generator=g))
    report = summarize(torch.stack(draws), truths)
    coverage = float(report.coverage.mean())
    assert abs(coverage - 0.9) < 0.02, coverage
    assert float((report.psnr_mean - report.psnr_single).mean()) > 1.0
    with pytest.raises(ValueError, match="at least 2 samples"):
        summarize(torch.stack(draws[:1]), truths)


def test_posterior_samples_are_distinct_draws_in_one_pass():
    import recon

    op = recon.ParallelBeamCT(16, 4)
    prior = recon.models.GaussianDenoiser(torch.full((1, 16, 16), 0.3), 0.02 * torch.eye(256))
    m = recon.operators.noise.simulate(op, recon.data.head_ct_phantoms(2, 16, "test", 0))
    samples = posterior_samples(m, prior, "proximal", k=3, steps=4, final_projection=False)
    assert samples.shape == (3, 2, 1, 16, 16) and not torch.allclose(samples[0], samples[1])
    again = posterior_samples(recon.operators.noise.Measurement(m.y[1:], op), prior, "proximal", k=1, seed=1,
                              steps=4, final_projection=False)
    assert torch.allclose(again[0, 0], samples[0, 1], atol=1e-6)  # sample j of image i uses seed j * B + i


def test_every_method_is_tuned_by_one_protocol_with_its_own_seed():
    import recon
    from recon.tuning import Range, study_seed, tune_method

    op = recon.ParallelBeamCT(16, 6)
    images = recon.data.head_ct_phantoms(3, 16, "val", 0)
    noise = recon.operators.noise.RelativeGaussian(0.02)
    a = tune_method("tv", op, images, noise=noise, fixed={"iters": 60}, n_trials=10, n_startup_trials=4, name="a")
    b = tune_method("tv", op, images, noise=noise, fixed={"iters": 60}, n_trials=10, n_startup_trials=4, name="b")
    assert a.seed == study_seed("a") != b.seed and a.trials[0]["weight"] != b.trials[0]["weight"]
    assert len(a.trials) == 10 and a.value == max(t["value"] for t in a.trials) and a.at_bound == []
    assert a.options == {"iters": 60, "weight": a.best["weight"]}
    # A range that excludes the optimum is reported as such.
    narrow = tune_method("tv", op, images, noise=noise, fixed={"iters": 60}, space={"weight": Range(0.05, 0.5, True)},
                         n_trials=12, n_startup_trials=4, name="narrow")  # far over-regularised: best at the bottom
    assert narrow.at_bound == ["weight"] and narrow.value < a.value
    assert Range(0.0, 1.0).at_bound(0.99) and not Range(1e-3, 1e3, log=True).at_bound(1.0)


def test_the_protocol_searches_one_or_two_parameters_on_a_grid():
    import pytest

    import recon
    from recon.methods import METHODS
    from recon.tuning import MIN_TPE_TRIALS, Range, search_plan, tune_method

    op = recon.ParallelBeamCT(16, 6)
    images = recon.data.head_ct_phantoms(3, 16, "val", 0)
    noise = recon.operators.noise.RelativeGaussian(0.02)
    tuned = tune_method("tv", op, images, noise=noise, fixed={"iters": 30}, search="protocol", name="grid")
    weights = sorted(t["weight"] for t in tuned.trials)  # every grid point once, whatever n_trials says
    grid = METHODS["tv"].space_for({})["weight"].grid(13)
    assert tuned.search == "grid" and weights == grid and tuned.value == max(t["value"] for t in tuned.trials)
    assert tuned.best["weight"] in weights
    two = search_plan({"lam": Range(0.0, 1.0), "snr": Range(0.01, 10.0, log=True)}, "grid")
    assert two.n_trials == 49 and two.grid["lam"][:2] == pytest.approx([0.0, 1 / 6]) and two.grid["snr"][-1] == 10.0
    three = {k: Range(0.0, 1.0) for k in "abc"}
    assert search_plan(three, "tpe", n_trials=10, n_startup_trials=8).n_trials == 10  # today's studies, unchanged
    plan = search_plan(three, "protocol", n_trials=10)
    assert plan.kind == "tpe" and plan.n_trials == MIN_TPE_TRIALS and plan.n_startup_trials == MIN_TPE_TRIALS // 3
    with pytest.raises(ValueError, match="1 or 2 free parameters"):
        search_plan(three, "grid")
    with pytest.raises(ValueError, match="'tpe', 'grid' or 'protocol'"):
        search_plan(three, "random")
    with pytest.raises(ValueError, match="at least 2 points"):
        Range(0.0, 1.0).grid(1)


def test_the_protocol_tunes_on_validation_and_tests_off_grid():
    import recon
    from recon.tuning import Range, Tuned
    from studies import protocol
    from studies.evaluation_study import run_task
    from studies.results import to_json

    op = recon.ParallelBeamCT(16, 6)
    prior = recon.models.GaussianDenoiser(torch.full((1, 16, 16), 0.3), 0.02 * torch.eye(256))
    task = protocol.Task("CT, 6 views", op, "head_ct", protocol.PoissonCT(flux=1e5))
    assert task.score_methods() == ["proximal_ddrm", "dps"] and "Poisson" in task.key
    choices = protocol.candidates(task, nfe=4, prior=prior, with_pc=True)
    assert choices["proximal_ddrm (pc)"] == protocol.Choice("proximal_ddrm", {"steps": 2, "sampler": "pc"}, prior)
    assert choices["tv"].options == {"iters": 300} and choices["dps"].options == {"steps": 4}
    tuned = protocol.tune_all(task, choices, n_val=2, n_trials=2, seed=0)
    assert set(tuned) == set(choices) and all(isinstance(t, Tuned) and t.trials for t in tuned.values())
    result = run_task(task, prior, tuned, n_images=3, seed=0)
    assert [r.method for r in result["rows"]] == ["fbp", "tv", "proximal_ddrm", "dps"]
    assert result["off_grid"] and result["noise_std"] > 0 and all(len(r.psnr) == 3 for r in result["rows"])
    assert result["rows"][2].options["steps"] == 4 and result["rows"][2].nfe == 4
    stored = to_json({**result, "tuned": tuned})  # the results file's shape
    assert list(stored["rows"][2]) == ["method", "options", "psnr", "ssim", "residual", "nfe", "seconds_per_image"]
    assert list(stored["tuned"]["tv"]) == ["method", "fixed", "best", "value", "trials", "at_bound", "seed", "search"]
    crime = run_task(task, prior, tuned, n_images=3, seed=0, off_grid=False)
    assert crime["rows"][0].psnr != result["rows"][0].psnr  # the data differ: the inverse crime is a choice
    assert [t.key for t in protocol.tasks()][-1] == "MRI, 8x|noise-free|test_shift"
    clean = protocol.Task("CT, 6 views", op, "head_ct")  # a given space replaces the method's own (the cut-off too)
    space = {"lam": Range(0.0, 1.0), "rcond": Range(1e-6, 1e-1, log=True)}
    truncated = protocol.tune_all(clean, {"p": protocol.Choice("proximal", {"steps": 2}, prior)}, n_val=2, n_trials=2,
                                  seed=0, space=space)["p"]
    assert set(truncated.best) == {"lam", "rcond"} and 1e-6 <= truncated.best["rcond"] <= 1e-1


def test_stored_tuned_values_and_briefs_keep_the_files_shape():
    from recon.tuning import Tuned
    from studies.results import Brief, tag_of, to_json, tuned_from_json, tuned_text

    tuned = Tuned("proximal", {"steps": 50, "sampler": "pc"}, {"lam": 0.5, "snr": 0.2}, 30.0, [{"value": 30.0}],
                  ["lam"], 7)
    assert to_json(Brief(tuned, prior="cm", borrowed_from=200)) == {
        "prior": "cm", "method": "proximal", "fixed": {"steps": 50, "sampler": "pc"}, "best": {"lam": 0.5, "snr": 0.2},
        "value": 30.0, "at_bound": ["lam"], "seed": 7, "search": "tpe", "borrowed_from": 200}
    assert tuned_from_json(to_json(tuned)) == tuned and tuned_from_json(to_json(Brief(tuned))).trials == []
    assert tuned_text({"a": to_json(tuned)}, "a") == "lam = 0.5†, snr = 0.2" and tuned_text({}, "a") == ""
    assert tag_of({"name": "MRI, 8x", "noise": "noise-free", "split": "test_shift"}) == "MRI_8x_shift"
    assert tag_of({"name": "CT, 16 views", "noise": "Poisson, 1e+04"}) == "CT_16_views_noisy"


def test_the_solvers_study_borrows_the_tuning_of_the_nearest_budget_in_log_nfe():
    from studies import protocol
    from studies.solver_study import SOLVERS, methods_at, nearest_budget

    assert [nearest_budget(n, (60, 8)) for n in (4, 8, 10, 21, 22, 30, 100)] == [8, 8, 8, 8, 60, 60, 60]
    task = next(t for t in protocol.tasks() if t.noise is not None)
    assert methods_at(task, 8, 8) == ["proximal_ddrm", "dps", *SOLVERS, "consistency"]
    assert methods_at(task, 60, 8) == ["proximal_ddrm", "dps", *SOLVERS]


def test_the_solvers_study_tunes_with_the_search_it_is_given(monkeypatch):
    from studies import protocol, solver_study

    seen = {}

    def record(task, todo, **options):  # what the study asks the protocol's tuner for, without tuning
        seen.update(options, methods=list(todo))
        return {}

    monkeypatch.setattr(solver_study, "tune_all", record)
    task = next(t for t in protocol.tasks() if t.noise is None)
    kept = {"proximal": "stored", "dps": "stored"}
    out = solver_study.tune_setting(task, None, 60, few_step=8, table_nfe=60, stored=kept, n_val=8, n_trials=10,
                                    seed=0, search="protocol")
    assert seen["search"] == "protocol" and seen["methods"] == list(solver_study.SOLVERS) and out == kept
    solver_study.tune_setting(task, None, 8, few_step=8, table_nfe=60, stored={}, n_val=8, n_trials=10, seed=0)
    assert seen["search"] == "tpe" and seen["name"]("dds").endswith("|8 NFE")  # the stored studies' search and names


def test_a_solvers_setting_cut_short_resumes_from_the_tunings_it_saved(monkeypatch):
    from recon.tuning import Tuned
    from studies import protocol, solver_study
    from studies.experiments import _tune_solver_setting
    from studies.results import to_json

    asked, saved = [], []

    def fake(task, todo, *, on_tuned=None, **options):  # "tunes" each method it is asked for, saving each
        out = {}
        for label, choice in todo.items():
            asked.append(label)
            out[label] = Tuned(choice.method, dict(choice.options), {"x": 1.0}, 30.0, [], [], 0, "grid")
            on_tuned(label, out[label])
        return out

    monkeypatch.setattr(solver_study, "tune_all", fake)
    task = next(t for t in protocol.tasks() if t.noise is None)
    stored = Tuned("dds", {"steps": 8}, {"eta": 0.5}, 31.0, [], [], 0, "grid")
    resumed = {"8": {"dds": to_json(stored)}}
    tune = {"few_step": 8, "table_nfe": 60, "n_val": 4, "n_trials": 10, "seed": 0, "device": "cpu", "search": "grid"}
    kept = {m: stored for m in task.score_methods()}
    out = _tune_solver_setting(task, None, (8, 60), kept, resumed, tune, lambda now: saved.append(to_json(now)))
    assert "dds" not in asked[:len(solver_study.methods_at(task, 8, 8)) - 1]  # the saved tuning is not redone
    assert out[8]["dds"].best == {"eta": 0.5} and out[60]["proximal"] is stored
    assert asked.count("dds") == 1 and set(task.score_methods()).isdisjoint(asked[-len(solver_study.SOLVERS):])
    assert saved[-1]["8"]["dds"]["best"] == {"eta": 0.5} and set(saved[-1]) == {"8", "60"}
    assert set(saved[-1]["60"]) == set(solver_study.SOLVERS)  # every fresh tuning saved, with what was resumed


def test_the_tuning_sweep_chooses_on_validation_and_reports_draws_and_the_oracle():
    import pytest

    import recon
    from studies import protocol
    from studies.results import to_json
    from studies.tuning_study import (
        BOOTSTRAP,
        best_point,
        choices,
        draw_spread,
        grid_points,
        summary,
        sweep,
        tuned_of,
        tuned_row,
    )

    assert len(grid_points("tv", {"iters": 30})) == 13 and grid_points("fbp", {}) == [{}]
    pc = grid_points("proximal", {"steps": 2, "sampler": "pc"})  # lam and the corrector's snr: a 7 x 7 grid
    assert len(pc) == 49 and set(pc[0]) == {"lam", "snr"}
    with pytest.raises(ValueError, match="more than two free parameters"):
        grid_points("consistency", {"steps": 8})
    assert best_point([[1.0, 5.0], [2.0, 2.0]]) == 0 and best_point([[1.0, 5.0], [2.0, 2.0]], slice(0, 1)) == 1
    assert best_point([[1.0, 5.0], [2.0, 2.0]], [0, 0, 0, 0, 1]) == 1  # a bootstrap resample: image 0 four times
    flat = [[30.0, 30.2, 29.8, 30.1], [30.1, 30.0, 29.9, 30.05]]  # two points, close: resamples disagree
    boot = choices(flat, 1, 4, seed=0)
    assert len(boot) == BOOTSTRAP and set(boot) == {0, 1} and choices(flat, 1, 4, seed=0) == boot
    assert choices(flat, 2, 2, seed=0) == [0, 1]

    task = protocol.Task("CT, 6 views", recon.ParallelBeamCT(16, 6), "head_ct", protocol.PoissonCT(flux=1e5))
    saved = []  # what a sweep saves after every point, for a run that is cut short
    entry = sweep(task, "tv", {"iters": 30}, None, draws=2, n_val=2, n_images=3, seed=0,
                  save=lambda progress: saved.append(to_json(progress)))
    val_means = [sum(p) / len(p) for p in entry["val_psnr"]]
    test_means = [sum(r.psnr) / 3 for r in entry["rows"]]
    assert len(entry["points"]) == len(entry["rows"]) == 13 and all(len(p) == 4 for p in entry["val_psnr"])
    assert val_means[entry["chosen"]] == max(val_means) and test_means[entry["oracle"]] == max(test_means)
    assert len(entry["draws"]) == 2 and max(val_means) - min(val_means) > 1  # the weight matters on this grid
    stored = to_json(entry)
    assert [len(p["rows"]) for p in saved] == list(range(1, 14))
    # cut short after 10 points, it resumes from what it saved and ends as the uninterrupted sweep (timings aside)
    resumed = to_json(sweep(task, "tv", {"iters": 30}, None, draws=2, n_val=2, n_images=3, seed=0, done=saved[9]))
    untimed = lambda e: {**e, "rows": [{k: v for k, v in r.items() if k != "seconds_per_image"} for r in e["rows"]]}
    assert untimed(resumed) == untimed(stored)
    with pytest.raises(ValueError, match="delete its 'in_progress' entry"):
        sweep(task, "tv", {"iters": 30}, None, draws=2, n_val=2, n_images=3, seed=0,
              done={"val_psnr": saved[4]["val_psnr"], "rows": []})
    low, high = draw_spread(stored)
    assert low <= high and tuned_row(stored)["options"]["weight"] == entry["points"][entry["chosen"]]["weight"]
    tuned = tuned_of(stored, seed=0)  # the sweep's value as the protocol's tuning result, for the studies that run it
    assert tuned.best == entry["points"][entry["chosen"]] and tuned.value == pytest.approx(max(val_means))
    assert tuned.search == "grid" and len(tuned.trials) == 13 and tuned.options == {"iters": 30, **tuned.best}
    assert tuned.at_bound == ([] if 0 < entry["chosen"] < 12 else ["weight"])

    # what the chapter reads of a finished sweep
    stored.update(task=task.key, label="tv")
    s = summary(stored)
    assert s["parameter"] == "weight" and s["log"] and s["chosen"] == entry["points"][entry["chosen"]]["weight"]
    assert s["near"][0] <= s["chosen"] <= s["near"][1] and s["fall"] == pytest.approx(max(val_means) - min(val_means))
    assert s["test_at_oracle"] == max(test_means) and (s["draw_low"], s["draw_high"]) == (low, high)
    beside = {"below": entry["chosen"] - 1, "above": entry["chosen"] + 1}
    assert s["neighbours"] == {k: (entry["points"][i]["weight"], test_means[i]) for k, i in beside.items()
                               if 0 <= i < 13} and s["record"] is None
    with pytest.raises(ValueError, match="one-parameter sweep"):
        summary({**stored, "method": "proximal", "fixed": {"steps": 2, "sampler": "pc"}})


def test_the_tuning_study_is_read_from_its_results_or_its_partial_file(tmp_path):
    import json

    import pytest

    from studies.tuning_study import load_sweeps, planned

    settings = {"nfe": 60, "methods": None, "draws": 1, "n_val": 16, "n_images": 32, "seed": 0}
    every = planned(settings)
    assert len(every) == len({(t.key, label) for t, label, _ in every})  # each (setting, method) swept once
    assert {label for _, label, _ in every} == {"tv", "proximal", "proximal_ddrm", "dps"}
    assert [label for _, label, _ in planned({**settings, "methods": ["tv"]})] == ["tv"] * (len(every) // 3)
    partial = {"settings": settings, "sweeps": [{"task": "t", "label": "tv"}],
               "in_progress": {"task": "t", "label": "dps", "val_psnr": [], "rows": []}}
    (tmp_path / "tuning.partial.json").write_text(json.dumps(partial))
    read = load_sweeps(tmp_path / "tuning.partial.json")
    assert read["running"] == ("t", "dps") and read["provenance"] is None and len(read["sweeps"]) == 1
    finished = {"provenance": {"command": "x"}, "results": {"settings": settings, "sweeps": []}}
    (tmp_path / "tuning.json").write_text(json.dumps(finished))
    assert load_sweeps(tmp_path / "tuning.json")["provenance"] == {"command": "x"}
    (tmp_path / "other.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="make_results.py tuning"):
        load_sweeps(tmp_path / "other.json")


def test_the_evaluation_runs_with_the_sweeps_values_of_the_tasks_test_split(tmp_path):
    import json

    import pytest

    from studies.experiments import _swept

    settings = {"nfe": 60, "methods": None, "draws": 1, "n_val": 2, "n_images": 32, "seed": 0}
    swept = {"task": "CT, 8 views|noise-free|test", "name": "CT, 8 views", "noise": "noise-free", "split": "test",
             "label": "tv", "method": "tv", "fixed": {"iters": 30}, "points": [{"weight": 1e-4}, {"weight": 1e-2}],
             "val_psnr": [[20.0, 21.0], [25.0, 24.0]], "chosen": 1}
    shifted = {**swept, "task": "CT, 8 views|noise-free|test_shift", "split": "test_shift", "chosen": 0}
    (tmp_path / "tuning.partial.json").write_text(json.dumps({"settings": settings, "sweeps": [swept, shifted]}))
    tuned = _swept(tmp_path / "tuning.partial.json", nfe=60, seed=0)
    assert list(tuned) == [("CT, 8 views|noise-free", "tv")]  # a setting's tuning is its test split's
    chosen = tuned["CT, 8 views|noise-free", "tv"]
    assert chosen.best == {"weight": 1e-2} and chosen.value == 24.5
    with pytest.raises(ValueError, match="same options"):
        _swept(tmp_path / "tuning.partial.json", nfe=100, seed=0)


def test_the_evaluation_tunes_what_no_sweep_covers_with_the_search_it_is_given(monkeypatch):
    from recon.tuning import Tuned
    from studies import evaluation_study, experiments, protocol

    seen = {}

    def record(task, choices, **options):  # the protocol's tuner, without tuning
        seen.update(options, labels=list(choices))
        return {label: Tuned(c.method, dict(c.options), {}, 0.0, [], [], 0, "grid") for label, c in choices.items()}

    monkeypatch.setattr(protocol, "tune_all", record)
    monkeypatch.setattr(evaluation_study, "run_task", lambda task, prior, tuned, **run: {"task": task.key, "rows": []})
    monkeypatch.setattr(protocol, "protocol_priors", lambda device: {"head_ct": None, "brain": None})
    key = "CT, 8 views|noise-free|test"
    out = experiments.evaluation(tasks=[key], search="protocol", n_val=16)
    assert seen["search"] == "protocol" and seen["n_val"] == 16 and "dps" in seen["labels"]
    fresh = next(e for e in out["tasks"] if e["task"] == key)
    assert fresh["tuned"]["dps"].value == 0.0 and "reused" in out  # this task tuned now, the others kept


def test_images_at_a_given_psnr_hit_it():
    from recon.data import head_ct_phantoms
    from recon.metrics import psnr
    from studies.plotting import at_psnr

    image = head_ct_phantoms(1, 32, "test", 0)[0, 0]
    for kind in ("noise", "blur"):
        for target in (25.0, 40.0):
            x = at_psnr(image, target, kind, generator=torch.Generator().manual_seed(0))
            assert float(psnr(x[None, None].float(), image[None, None])[0]) == pytest.approx(target, abs=0.05)
    with pytest.raises(ValueError, match="'noise' or 'blur'"):
        at_psnr(image, 30.0, "jpeg")


def test_the_prior_seed_study_repeats_the_tables_methods_with_each_prior_and_reads_their_spread(tmp_path):
    import pytest

    from studies.evaluation_study import seed_differences, seed_spread
    from studies.experiments import prior_seeds
    from studies.results import to_json

    task = "CT, 8 views|noise-free|test"  # one image, the shipped prior twice (by name and by folder): no spread
    result = to_json(prior_seeds(priors=("head_ct", "checkpoints/head_ct_64"), n_images=1, tasks=[task],
                                 methods=["proximal"]))
    entry, = result["tasks"]
    assert entry["task"] == task and set(entry["rows"]) == {"head_ct", "checkpoints/head_ct_64"}
    spread = seed_spread(entry)
    assert set(spread) == {"proximal"} and spread["proximal"]["spread"] == 0
    assert result["priors"]["head_ct"]["sha256"] == result["priors"]["checkpoints/head_ct_64"]["sha256"]
    with pytest.raises(ValueError, match="CT protocol task keys"):
        prior_seeds(priors=("head_ct",), tasks=["MRI, 4x|noise-free|test"])

    two = {"rows": {"a": {"m": {"psnr": [30.0, 32.0]}, "n": {"psnr": [29.0, 30.0]}},
                    "b": {"m": {"psnr": [28.0, 29.0]}, "n": {"psnr": [29.0, 29.0]}}}}
    assert seed_spread(two)["m"] == {"means": {"a": 31.0, "b": 28.5}, "spread": 2.5}
    assert seed_differences(two, "m", "n") == {"a": 1.5, "b": -0.5}  # the ranking of m over n flips with the prior


def test_each_prior_seed_is_the_shipped_cards_command_with_another_seed_into_its_own_folder(monkeypatch):
    import shlex

    import pytest

    from recon.models.checkpoints import load_card
    from studies.evaluation_study import PRIOR_SEEDS, seed_commands

    card = shlex.split(load_card("head_ct")["command"])[3:]
    runs = seed_commands()
    assert [folder for folder, _ in runs] == [f"checkpoints/head_ct_64_seed{s}" for s in PRIOR_SEEDS]
    for (folder, args), seed in zip(runs, PRIOR_SEEDS):
        assert args[args.index("--seed") + 1] == str(seed) and args[args.index("--out") + 1] == folder
        rest = [a for i, a in enumerate(args) if i not in (args.index("--out") + 1,)]
        assert rest[:len(card) - 1] == [a for a in card if a != "checkpoints/head_ct_64"]  # nothing else changes
    from studies import evaluation_study

    monkeypatch.setattr(evaluation_study, "load_card", lambda prior: {"command": "python -m recon.train --seed 3"})
    with pytest.raises(ValueError, match="seed-0"):
        seed_commands()  # a card that already names a seed: which seed is the 'other' one is unclear


def test_a_study_cut_short_continues_from_its_partial_file_only_when_its_options_and_inputs_match(tmp_path):
    from studies.experiments import each_setting

    out, ran = tmp_path / "partial.json", []

    def run(setting):
        ran.append(setting)
        if setting == "c" and len(ran) == 3:
            raise KeyboardInterrupt  # the session ends during the third setting
        return {"task": setting, "value": len(ran)}

    with pytest.raises(KeyboardInterrupt):
        each_setting({"header": 1, "tasks": []}, "tasks", "abc", run, str(out), resume={"n": 2})
    result = each_setting({"header": 1, "tasks": []}, "tasks", "abc", run, str(out), resume={"n": 2})
    assert ran == ["a", "b", "c", "c"] and [e["task"] for e in result["tasks"]] == ["a", "b", "c"]
    assert "resumed_options" not in result  # the result file holds what the study found, not its resumption
    assert json.loads(out.read_text())["resumed_options"] == {"n": 2}
    ran.clear()
    each_setting({"header": 1, "tasks": []}, "tasks", "ab", run, str(out), resume={"n": 3})  # other options
    each_setting({"header": 2, "tasks": []}, "tasks", "ab", run, str(out), resume={"n": 3})  # other inputs
    assert ran == ["a", "b", "a", "b"]
