"""The report at any number of models: density views and quantile bands above `DENSE_MODELS`, the
same figures as before below it, long tables page by page, and the page's small fixes (ε as the
table wrote it, widths rounded, one ε measured drawn as points, a failed `analyze` writes nothing)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _cli import run_cli_output

import robustarch
from robustarch.report import build_report
from robustarch.report.dense import DENSE_MODELS
from robustarch.report.figures import eps_label
from robustarch.report.pager import PAGE_ROWS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from scale_tables import models_and_samples, nares_raw, prepare_nares  # noqa: E402


def _svg(html: str, plot_id: str) -> str:
    m = re.search(rf'<svg class="plot" id="{plot_id}".*?</svg>', html, re.S)
    assert m, plot_id
    return m.group(0)


def test_eps_is_printed_as_the_table_wrote_it():
    assert eps_label(8 / 255) == "8/255" and eps_label(0.03) == "0.03" and eps_label(0.2) == "0.2"
    assert eps_label(0.0123456) == "0.0123"
    models, _ = models_and_samples(30, 50, eps=("4/255", "8/255"))
    html = build_report(None, analysis=robustarch.analyze_table(models, eps=8 / 255, n_boot=50), n_boot=50)
    assert "robust accuracy at ε=8/255 vs clean accuracy" in html
    plots = html.split('id="plots"')[1].split('id="trials"')[0]
    assert "0.0313725" not in plots


def test_fractional_widths_are_rounded_in_the_trial_table():
    models, _ = models_and_samples(20, 50)
    models["width"] = 80 / 3
    html = build_report(None, analysis=robustarch.analyze_table(models, n_boot=50), n_boot=50)
    table = html[html.index('id="trial-table"') :]
    table = table[: table.index("</table>")]
    assert "26.7</td>" in table and "26.667" not in table


def test_one_eps_column_draws_points_not_lines_from_zero():
    models, _ = models_and_samples(20, 50, eps=("8/255",))
    html = build_report(None, analysis=robustarch.analyze_table(models, n_boot=50), n_boot=50)
    svg = _svg(html, "eps-curves")
    assert svg.count("<circle") == 40  # each model at ε = 0 (clean) and at 8/255
    assert "<path" not in svg and "points, not a curve" in html


def test_a_failed_analyze_writes_nothing(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"model": ["a"], "robust_accuracy@0.1": [0.2]}).to_csv(bad, index=False)
    for fmt, out in (("csv", tmp_path / "X.csv"), ("json", tmp_path / "x.json")):
        code, _, err = run_cli_output(["analyze", str(bad), "--format", fmt, "--out", str(out)], monkeypatch, capsys)
        assert code == 2 and "clean_accuracy" in err
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_small_studies_draw_every_model_as_before():
    models, samples = models_and_samples(40, 200)
    html = build_report(None, analysis=robustarch.analyze_table(models, samples, n_boot=50), n_boot=50)
    scatter = _svg(html, "robust-vs-clean_accuracy")
    assert scatter.count("<circle") == 40 and 'class="mark bin"' not in scatter
    assert _svg(html, "eps-curves").count("data-trial=") == 40
    assert "band" not in html.split('id="plots"')[1].split('id="trials"')[0]
    assert '<table class="sortable" id="trial-table">' in html and 'class="pager"' not in html


@pytest.fixture(scope="module")
def big():
    models, samples = models_and_samples(DENSE_MODELS + 500, 60)
    a = robustarch.analyze_table(models, samples, n_boot=30)  # every claim, the power-law bootstraps too
    return a, build_report(None, analysis=a, n_boot=30)


def test_many_models_become_a_density_with_the_front_and_best_as_points(big):
    a, html = big
    scatter = _svg(html, "robust-vs-clean_accuracy")
    bins = re.findall(r'<rect class="mark bin"[^>]*data-tip="(\d+) models?:', scatter)
    assert bins and sum(map(int, bins)) == a.n_complete  # every model is in one cell
    drawn = set(map(int, re.findall(r'<circle[^>]*data-trial="(\d+)"', scatter)))
    front = set(a.tables["trials"].loc[a.tables["trials"]["pareto"], "trial"].astype(int))
    assert front | {int(a.best_trial["trial"])} == drawn
    for plot_id in ("eps-curves", "power-law", "margins"):
        svg = _svg(html, plot_id)
        assert 'class="mark band"' in svg and "25–75%" in svg, plot_id
        assert len(set(re.findall(r'data-trial="(\d+)"', svg))) <= len(drawn), plot_id


def test_the_power_law_claims_are_tested_on_every_fitted_model(big):
    # their parametric bootstraps refit all 1 500 models per replicate, and once took over 10 minutes
    a, _ = big
    f = a.tables["findings"].set_index("key")
    p = a.tables["power_law"]
    fitted = int(((p["status"] == "ok") & p["in_statistics"].astype(bool)).sum())
    for key in ("power_law", "universality", "margin_explains_slope", "slope_matches_margin_tail"):
        assert pd.isna(f.loc[key, "reason"]) and 0 <= f.loc[key, "p_value"] <= 1, key
    assert f.loc["power_law", "n"] == f.loc["universality", "n"] == fitted > 1000


def test_long_tables_travel_as_json_with_every_row(big):
    a, html = big
    assert len(a.tables["trials"]) > PAGE_ROWS
    m = re.search(
        r'<div class="pager" id="trial-table-pager".*?<script type="application/json">(.*?)</script>', html, re.S
    )
    doc = json.loads(m.group(1))
    assert len(doc["data"][0]) == len(a.tables["trials"]) == len(doc["trial"])
    assert doc["cols"][0] == "trial" and "width" in doc["cols"]
    widths = doc["data"][doc["cols"].index("width")]
    assert all(re.fullmatch(r"\d+(\.\d)?", w) for w in widths)
    assert html.count("<tr") < 300  # no long table is HTML rows


def test_a_hostile_name_in_a_long_table_stays_text():
    models, _ = models_and_samples(PAGE_ROWS + 5, 30)
    models.loc[0, "model"] = "</script><script>alert(1)</script>"
    html = build_report(None, analysis=robustarch.analyze_table(models, n_boot=20), n_boot=20)
    assert "<script>alert(1)" not in html
    assert html.count("<script") == 3  # the two long tables' data and the page's script


def test_nares_preparation_gives_the_grid():
    t = prepare_nares(nares_raw())
    assert len(t) == 15625 and t["depth"].between(12, 33).all() and t["params"].gt(0).all()
    assert np.isclose(t["width"].iloc[1], 16 * (8 + 8 + 10) / 3)
