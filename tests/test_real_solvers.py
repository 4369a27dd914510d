"""The real-scan solvers study (studies.real_solvers): it reads one source of tuned values, tunes only the warm start's
level (on the protocol grid, the stored values held), and picks a solver on validation, never among the other methods."""

import pytest

from recon.solvers import START_SIGMA
from recon.tuning import Tuned
from studies import protocol
from studies.real_solvers import SETTINGS, WARM, pick, stored_tuned, tune_warm_starts
from studies.results import RESULTS, load_results
from studies.solver_study import SOLVERS


def task_named(name: str, noisy: bool = False) -> protocol.Task:
    return next(t for t in protocol.tasks() if t.name == name and t.split == "test" and (t.noise is not None) == noisy)


def tuned(method: str, value: float, **best) -> Tuned:
    return Tuned(method, {"steps": 2}, best, value, [], [], 0)


@pytest.mark.parametrize("noisy", [False, True])
def test_stored_values_come_from_the_evaluation_and_the_solvers_study(noisy):
    task = task_named(SETTINGS["ct"], noisy)
    evaluation = {e["task"]: e for e in load_results(RESULTS / "evaluation.json")["results"]["tasks"]}[task.key]
    solvers = {e["task"]: e for e in load_results(RESULTS / "solvers.json")["results"]["tasks"]}[task.key]
    got = stored_tuned(task, evaluation, solvers, 60)
    assert set(got) == {"tv", *task.score_methods(), *SOLVERS}
    assert got["dps"].best == evaluation["tuned"]["dps"]["best"]
    assert got["diffpir"].best == solvers["tuned"]["60"]["diffpir"]["best"]


def test_the_pick_is_the_best_solver_on_validation_cold_or_warm():
    candidates = {"tv": tuned("tv", 40.0), "dps": tuned("dps", 39.0), "dds": tuned("dds", 30.0),
                  f"dds{WARM}": tuned("dds", 31.5), "daps": tuned("daps", 31.0)}
    assert pick(candidates) == f"dds{WARM}"
    del candidates[f"dds{WARM}"]
    assert pick(candidates) == "daps"


def test_the_warm_start_tunes_only_its_level_on_the_grid():
    task = task_named(SETTINGS["ct"])
    prior = protocol.protocol_priors()[task.dataset]
    stored = {"diffpir": tuned("diffpir", 0.0, lam=1.0, zeta=0.5), "dds": tuned("dds", 0.0, eta=0.5),
              "red_diff": tuned("red_diff", 0.0, lam=0.1, lr=0.05), "daps": tuned("daps", 0.0, step=0.3, s=0.01)}
    warm = tune_warm_starts(task, stored, prior, n_val=1, seed=0)
    assert set(warm) == {f"{m}{WARM}" for m in SOLVERS}
    for m in SOLVERS:
        got = warm[f"{m}{WARM}"]
        assert got.search == "grid" and len(got.trials) == 13 and list(got.best) == ["start_sigma"]
        assert got.fixed == stored[m].options
        assert START_SIGMA.low <= got.best["start_sigma"] <= START_SIGMA.high


def test_differences_are_per_person_and_the_sign_test_is_over_people():
    from studies.real_solvers import across_people, person_difference

    entry = {"subjects": ["a", "a", "a", "b", "c"],
             "rows": {"x": {"psnr": [30.0, 31.0, 32.0, 20.0, 25.0]}, "y": {"psnr": [29.0, 30.5, 31.0, 21.0, 24.0]}}}
    got = person_difference(entry, "x", "y")
    assert [d["person"] for d in got] == ["a", "b", "c"] and [d["slices"] for d in got] == [3, 1, 1]
    assert got[0]["difference"] == pytest.approx(2.5 / 3) and got[0]["interval"] is not None
    assert got[1]["difference"] == pytest.approx(-1.0) and got[1]["interval"] is None
    summary = across_people(got)
    assert (summary["people"], summary["gains"], summary["losses"]) == (3, 2, 1)
    assert summary["sign_test_p"] == pytest.approx(1.0) and summary["smallest_p"] == pytest.approx(0.25)
