"""`analyze_table` / `robustarch analyze`: the findings and report on a plain table of models that
robustarch did not produce — here CIFAR-10 L∞ entries of the RobustBench leaderboard — and the same
analysis as a study's when fed that study's own numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from _cli import run_cli_output as _run
from _studies import make_study

import robustarch
from robustarch.analysis import analyze, robustness_table, samples_table
from robustarch.errors import UserError
from robustarch.report import build_report

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROBUSTBENCH = Path(__file__).parent / "data" / "robustbench_cifar10_linf.csv"


@pytest.fixture(scope="module")
def leaderboard():
    return robustarch.analyze_table(ROBUSTBENCH, n_boot=300)


def _finding(a, key) -> dict:
    f = a.tables["findings"]
    return f[f["key"] == key].iloc[0].to_dict()


def test_robustbench_robust_accuracy_tracks_clean_accuracy(leaderboard):
    a = leaderboard
    assert a.n_used == 27 and a.enough and a.source == "table"
    assert a.eps == pytest.approx(8 / 255)
    r = _finding(a, "robust_tracks_clean")
    assert r["verdict"] == "supported"
    assert r["value"] > 0.5 and r["ci_low"] > 0  # Spearman ρ over 27 models: 0.79 by scipy on the CSV
    best = a.best_trial
    assert best["arch_summary"] == "WRN-70-16" and best["robust_accuracy"] == pytest.approx(0.6656)


def test_claims_without_their_columns_are_skipped_and_say_why(leaderboard):
    a = leaderboard
    for key in ("power_law", "slope_matches_margin_tail"):  # no per-sample table given
        r = _finding(a, key)
        assert r["verdict"] == "skipped" and "per-sample table" in r["text"]
    assert _finding(a, "size_adds_little")["verdict"] != "skipped"  # params are in the table
    assert any("--samples" in n for n in a.notes)
    html = build_report(None, analysis=a, n_boot=300)
    assert 'id="table-source"' in html and "robustarch analyze" in html
    assert "per-sample table" in html and "Holm" in html
    assert "Attack suite" not in html  # what a table does not record is left out, with a line saying so
    no_size = robustarch.analyze_table(
        pd.read_csv(ROBUSTBENCH, comment="#").drop(columns=["params", "depth"]), n_boot=100
    )
    assert _finding(no_size, "size_adds_little")["verdict"] == "skipped"
    assert "'params' column" in _finding(no_size, "size_adds_little")["text"]


def _as_tables(study):
    """A study's own numbers as the plain tables a user would write."""
    a = analyze(study, n_boot=200)
    t = a.tables["trials"]
    u = t[t["robust_accuracy"].notna()]
    models = u[
        ["trial", "arch_summary", "clean_accuracy", "attacked_clean_accuracy", "params", "flops", "depth", "width"]
    ].rename(columns={"trial": "model", "arch_summary": "arch"})
    wc = robustness_table(study).query("attack == 'worst_case'")
    for eps, g in wc.groupby("eps"):
        models[f"robust_accuracy@{eps}"] = models["model"].map(dict(zip(g["trial"], g["robust_accuracy"])))
    s = samples_table(study)
    samples = pd.DataFrame({"model": s["trial"], "min_eps": s["min_adversarial_eps"], "margin": s["margin"]})
    return a, models, samples[samples["model"].isin(models["model"])]


def test_a_study_and_its_table_give_the_same_statistics():
    study = make_study(24, n_samples=120, n_flagged=0, n_failed=0, seed=3)
    a, models, samples = _as_tables(study)
    b = robustarch.analyze_table(models, samples, n_boot=200, eps=a.eps)
    assert b.eps_grid == pytest.approx(a.eps_grid) and b.n_used == a.n_used
    pd.testing.assert_frame_equal(a.tables["correlations"], b.tables["correlations"])
    fa, fb = a.tables["findings"].set_index("key"), b.tables["findings"].set_index("key")
    assert list(fa.index) == list(fb.index)
    assert fa.loc["robust_tracks_clean", "value"] == pytest.approx(fb.loc["robust_tracks_clean", "value"])
    assert fa.loc["power_law", "value"] == pytest.approx(fb.loc["power_law", "value"], rel=1e-6)
    cubuk = [
        "robust_tracks_clean",
        "conditional_tracks_clean",
        "size_adds_little",
        "power_law",
        "slope_matches_margin_tail",
        "deeper_more_robust",
    ]
    assert (fb.loc[cubuk, "verdict"] != "skipped").all()  # every input they need is in the table


def test_headline_eps_is_chosen_on_validation_columns():
    rng = np.random.default_rng(0)
    n, grid = 12, [0.01, 0.05, 0.1, 0.3]
    clean = rng.uniform(0.8, 0.95, n)
    keep = {0.01: 0.95, 0.05: 0.7, 0.1: 0.45, 0.3: 0.02}  # the median model keeps ~half at ε = 0.1
    models = pd.DataFrame({"clean_accuracy": clean, "val_accuracy": clean})
    for e in grid:
        models[f"robust_accuracy@{e}"] = clean * keep[e] * rng.uniform(0.9, 1.1, n)
        models[f"val_robust_accuracy@{e}"] = clean * keep[e] * rng.uniform(0.9, 1.1, n)
    a = robustarch.analyze_table(models, n_boot=50)
    assert a.eps == 0.1 and "validation" in a.eps_choice
    assert robustarch.analyze_table(models, n_boot=50, eps=0.05).eps == 0.05
    html = build_report(None, analysis=a, n_boot=50)
    assert 'id="headline-eps"' in html and "chosen on the validation split" in html


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.drop(columns=["clean_accuracy"]), "no 'clean_accuracy' column"),
        (lambda m: m.drop(columns=["robust_accuracy@8/255"]), "no robust accuracy column"),
        (lambda m: m.assign(clean_accuracy=m["clean_accuracy"] * 100), "must lie in [0, 1]"),
        (lambda m: m.rename(columns={"robust_accuracy@8/255": "robust_accuracy@eight"}), "is not an ε"),
        (lambda m: m.assign(params="big"), "'big' is not a number"),
    ],
)
def test_bad_tables_are_one_line_errors(change, message):
    models = pd.read_csv(ROBUSTBENCH, comment="#")
    with pytest.raises(UserError) as exc:
        robustarch.analyze_table(change(models), n_boot=10)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_analyze_command_writes_page_and_tables(tmp_path, monkeypatch, capsys):
    samples = pd.DataFrame({"model": ["Wong2020Fast"] * 3, "min_eps": [0.01, None, 0.02], "margin": [1.0, 2.0, 3.0]})
    samples.to_csv(tmp_path / "s.csv", index=False)
    code, out, err = _run(
        [
            "analyze",
            str(ROBUSTBENCH),
            "--samples",
            str(tmp_path / "s.csv"),
            "--format",
            "json",
            "--out",
            str(tmp_path / "rb.json"),
        ],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "rb.json").read_text())
    assert len(doc["trials"]) == 27 and doc["info"][0]["source"] == "table"
    assert math.isclose(doc["info"][0]["eps"], 8 / 255)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"model": ["a"], "robust_accuracy@0.1": [0.2]}).to_csv(bad, index=False)
    code, _, err = _run(["analyze", str(bad), "--out", str(tmp_path / "x.html")], monkeypatch, capsys)
    assert code == 2 and err.count("robustarch: error:") == 1 and "clean_accuracy" in err
    assert "Traceback" not in err


def test_a_recipe_can_fix_the_headline_eps(tmp_path):
    from robustarch.analysis.headline import choose_eps
    from robustarch.study import load_recipe
    from robustarch.study.config import validate_config

    grid = [0.01, 0.05, 0.1]
    eps, how = choose_eps(grid, attrs={"robustarch_config": {"headline_eps": 0.05}, "objective_eps": 0.1})
    assert eps == 0.05 and "recipe" in how
    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset: digits\nsuite: quick\nheadline_eps: 0.05\n")
    config = load_recipe(recipe).studies[0][1]
    assert config.headline_eps == 0.05
    validate_config(config)
    recipe.write_text("dataset: digits\nsuite: quick\nheadline_eps: 0.123\n")
    with pytest.raises(UserError, match="headline_eps 0.123 is not on suite"):
        validate_config(load_recipe(recipe).studies[0][1])


def test_named_claims_are_the_only_ones_tested_and_unknown_names_are_refused():
    """A study's question names its claims: only those are tested (and Holm-corrected together)."""
    a = robustarch.analyze_table(ROBUSTBENCH, claims=["robust_tracks_clean"], n_boot=200)
    assert list(a.tables["findings"]["key"]) == ["robust_tracks_clean"]
    with pytest.raises(UserError, match="unknown claim"):
        robustarch.analyze_table(ROBUSTBENCH, claims=["robustness_is_magic"], n_boot=200)


def test_the_test_cell_names_the_cluster_bootstrap_where_families_are_declared():
    """With a `family` column the sentence said "cluster bootstrap over 21 families" while the table's
    test cell still named the permutation test."""
    models = pd.read_csv(ROBUSTBENCH.with_name("robustbench_cifar10_linf_families.csv"), comment="#")
    f = robustarch.analyze_table(models, n_boot=200).tables["findings"].set_index("key")
    for key in ("robust_tracks_clean", "conditional_tracks_clean"):
        assert "cluster bootstrap over 21 families" in f.loc[key, "test"], f.loc[key, "test"]
        assert "permutation" not in f.loc[key, "test"]
    plain = robustarch.analyze_table(pd.read_csv(ROBUSTBENCH, comment="#"), n_boot=200).tables["findings"]
    assert "cluster" not in plain.set_index("key").loc["robust_tracks_clean", "test"]
