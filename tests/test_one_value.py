"""One value per (method, setting, budget, prior): every study that shows a row the results table
(``results/evaluation.json``) also holds runs the table's tuned values on the same test images and scores it within
:data:`TOLERANCE_DB` (the arithmetic of another CPU). A table rebuilt without rerunning the studies that read it fails
here, naming the study to rerun."""

from statistics import fmean

import pytest

from studies.results import load_results

TOLERANCE_DB = 0.3


@pytest.fixture(scope="module")
def table():
    stored = load_results("results/evaluation.json")["results"]
    return {"nfe": stored["options"]["nfe"],
            "tasks": {e["task"]: {**e, "by_method": {r["method"]: r for r in e["rows"]}} for e in stored["tasks"]}}


def differences(rows: dict, entry: dict, *, check_options: bool = True) -> list[str]:
    """The rows of ``rows`` (label -> row, each with its method) that the table's ``entry`` also holds and that
    differ from it: other tuned options, or a mean PSNR more than :data:`TOLERANCE_DB` away."""
    out = []
    for label, row in rows.items():
        mine = entry["by_method"].get(row["method"])
        if mine is None or label != row["method"]:
            continue
        if check_options and row["options"] != mine["options"]:
            out.append(f"{entry['task']} {label}: options {row['options']} against the table's {mine['options']}")
        gap = fmean(row["psnr"]) - fmean(mine["psnr"])
        if abs(gap) > TOLERANCE_DB:
            out.append(f"{entry['task']} {label}: {gap:+.2f} dB from the table")
    return out


def test_the_solvers_chapter_shows_the_tables_rows_at_the_tables_budget(table):
    from studies.solver_study import rows_at

    stored = load_results("results/solvers.json")["results"]
    found = [d for e in stored["tasks"] for d in differences(rows_at(e, table["nfe"]), table["tasks"][e["task"]])]
    compared = sum(m in table["tasks"][e["task"]]["by_method"] for e in stored["tasks"]
                   for m in rows_at(e, table["nfe"]))
    assert compared >= 2 * len(stored["tasks"]), "the solvers study holds fewer of the table's rows than it should"
    assert found == [], "rerun `python scripts/make_results.py solvers` after the table: " + "; ".join(found)


def test_the_lesion_study_runs_the_tables_methods_as_the_table_scores_them(table):
    stored = load_results("results/lesions.json")["results"]
    found = [d for e in stored["tasks"] for d in differences(e["rows"], table["tasks"][e["task"]], check_options=False)]
    assert sum(label in table["tasks"][e["task"]]["by_method"] for e in stored["tasks"] for label in e["rows"]) >= 12
    assert found == [], "rerun `python scripts/make_results.py lesions` after the table: " + "; ".join(found)


def test_the_real_scan_solvers_run_the_tables_tuned_values(table):
    stored = load_results("results/real_solvers.json")["results"]
    found = []
    for entry in stored["tasks"]:
        mine = table["tasks"][entry["task"]]["tuned"]
        found += [f"{entry['task']} {label}" for label, tuned in entry["tuned"].items()
                  if label in mine and tuned["best"] != mine[label]["best"]]
    assert found == [], "rerun `python scripts/make_results.py real_solvers` after the table: " + "; ".join(found)


def test_the_consistency_chapter_shows_the_tables_rows_on_ct(table):
    from studies.consistency_study import DIFFUSION_PRIORS, TABLE_ROWS, with_table_rows

    stored = load_results("results/consistency.json")["results"]["head_to_head"]
    merged = [with_table_rows(e, table["tasks"][e["task"]], DIFFUSION_PRIORS[table["tasks"][e["task"]]["dataset"]])
              for e in stored if e["task"] in table["tasks"]]
    ct = [e for e in merged if e["task"].startswith("CT")]
    assert len(ct) == 4
    assert all(e["rows"][label]["source"] == "results/evaluation.json" for e in ct for label in TABLE_ROWS)
    assert all(e["rows"][label]["psnr"] == table["tasks"][e["task"]]["by_method"][e["rows"][label]["method"]]["psnr"]
               for e in ct for label in TABLE_ROWS)


def test_the_consistency_chapter_shows_the_solver_studys_rows_on_ct():
    from studies.consistency_study import DIFFUSION_PRIORS, SOLVER_BUDGET, SOLVER_ROWS, with_solver_rows

    stored = load_results("results/consistency.json")["results"]["head_to_head"]
    solvers = {e["task"]: e for e in load_results("results/solvers.json")["results"]["tasks"]}
    merged = [with_solver_rows(e, solvers[e["task"]], DIFFUSION_PRIORS[solvers[e["task"]]["dataset"]])
              for e in stored if e["task"] in solvers]
    ct = [e for e in merged if e["task"].startswith("CT")]
    assert len(ct) == 4
    for e in ct:
        point = next(p for p in solvers[e["task"]]["curve"] if p["nfe"] == SOLVER_BUDGET == p["tuned_at"])
        for label in SOLVER_ROWS:
            assert e["rows"][label]["source"] == "results/solvers.json"
            assert e["rows"][label]["psnr"] == point["rows"][e["rows"][label]["method"]]["psnr"]
