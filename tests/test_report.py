"""The HTML report and the table exports: self-contained, escaped, honest about too few trials;
the `report` / `export` commands and their one-line errors."""
from __future__ import annotations

import json
import re
import sys

import optuna
import pandas as pd
import pytest
from markupsafe import escape

from _studies import make_study
from robustarch import cli
from robustarch.analysis import analyze
from robustarch.report import analysis_tables, build_report, write_comparison, write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def study():
    return make_study(25, name=EVIL, n_flagged=2, search_training=True, seed=2)


@pytest.fixture(scope="module")
def html(study):
    return build_report(study, n_boot=200)


def test_page_is_self_contained(html):
    assert not re.search(r"(?:src|href|action|srcset)\s*=", html, re.I), "no attribute may load anything"
    assert not re.search(r"https?://|//cdn|@import|url\(", html, re.I)
    assert html.count("<script>") == 1 and html.count("<style>") == 1  # our own inline script and style


def test_user_strings_are_escaped(html):
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_summary_numbers_come_from_the_data(study, html):
    a = analyze(study, n_boot=200)
    corr = a.tables["correlations"]
    row = corr[(corr["eps"] == a.eps) & (corr["variable"] == "clean_accuracy") & (corr["method"] == "spearman")].iloc[0]
    expected = f"Spearman ρ = {row['coef']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}], n = {int(row['n'])}"
    assert expected.replace("-", "−") in html
    assert "2 model(s) failed an attack sanity check and are excluded" in html
    f = a.tables["findings"].set_index("key")
    assert str(escape(f.loc["robust_tracks_clean", "text"])) in html
    # The summary states a relation only as a finding, worded from its verdict.
    assert "grows as a power of ε" not in html and "rises with depth" not in html
    assert "held fixed" in html and "per extra cell" in html and "layer" not in html
    assert "--include-flagged" in html
    # The methods section names what a reader needs to reproduce the study.
    for fact in ("1068 train / 189 validation / 540 test", "LinfPGD", "{&#39;steps&#39;: 10", "linf",
                 "train_fraction", "seed 2"):
        assert fact in html, fact
    assert 'id="phase"' in html  # the training knobs were searched: a phase diagram is drawn


def test_flagged_models_are_marked_in_table_and_plots(html):
    assert html.count('<tr class="flagged') == 2
    assert "FLAGGED: gradients_finite_nonzero" in html
    assert 'class="mark flagged"' in html


def test_too_few_trials_still_give_a_report(tmp_path):
    path = write_report(make_study(2, n_flagged=0, name="tiny"), tmp_path / "tiny.html", n_boot=100)
    text = path.read_text()
    assert "Too few complete trials for statistics: 2 usable, at least 5 needed" in text
    assert "trial-table" in text
    empty = write_report(make_study(0, n_flagged=0, n_failed=1, name="empty"), tmp_path / "empty.html")
    assert "Too few complete trials" in empty.read_text()


def test_json_and_csv_export_every_table(study, tmp_path):
    names = set(analysis_tables(analyze(study, n_boot=100)))
    assert {"trials", "correlations", "partial_correlations", "ols_coefficients", "power_law",
            "power_law_summary", "pareto_front", "depth_width", "phase_diagram", "margin_quantiles",
            "summary"} <= names
    doc = json.loads(write_report(study, tmp_path / "t.json", fmt="json", n_boot=100).read_text())
    assert set(doc) == names
    assert len(doc["trials"]) == 28 and len(doc["correlations"]) > 0
    folder = write_report(study, tmp_path / "csv", fmt="csv", n_boot=100)
    assert {p.stem for p in folder.glob("*.csv")} == names
    corr = pd.read_csv(folder / "correlations.csv")
    assert corr.loc[0, "coef"] == pytest.approx(doc["correlations"][0]["coef"])


def test_comparison_page(study, tmp_path):
    other = make_study(20, name="adversarial", seed=5, slope=0.9)
    text = write_comparison(other, study, tmp_path / "cmp.html", n_boot=100).read_text()
    assert "Differences (B − A)" in text and "Mann–Whitney" in text
    assert EVIL not in text and "&lt;script&gt;" in text
    assert 'id="compare-scatter"' in text and 'id="compare-curves"' in text


def _journal_study(tmp_path, name="s1"):
    from optuna.storages.journal import JournalFileBackend

    url = str(tmp_path / "x.journal")
    storage = optuna.storages.JournalStorage(JournalFileBackend(url))
    make_study(12, name=name, storage=storage, seed=4)
    return url


def _run(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["robustarch", *argv])
    with pytest.raises(SystemExit) as exc:
        cli.main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_report_command_writes_page_exports_and_comparison(tmp_path, monkeypatch, capsys):
    url = _journal_study(tmp_path)
    from optuna.storages.journal import JournalFileBackend

    make_study(8, name="s2", storage=optuna.storages.JournalStorage(JournalFileBackend(url)), seed=6)
    code, out, _ = _run(["report", "--study", "s1", "--storage", url, "--out", str(tmp_path / "r.html"),
                         "--include-flagged"], monkeypatch, capsys)
    assert code == 0 and "r.html" in out
    assert "included in the statistics because include-flagged was set" in (tmp_path / "r.html").read_text()
    code, _, _ = _run(["report", "--study", "s1", "--storage", url, "--format", "csv", "--out",
                       str(tmp_path / "tables")], monkeypatch, capsys)
    assert code == 0 and (tmp_path / "tables" / "power_law.csv").exists()
    code, _, _ = _run(["report", "--compare", "s1", "s2", "--storage", url, "--out", str(tmp_path / "c.html")],
                      monkeypatch, capsys)
    assert code == 0 and "s2" in (tmp_path / "c.html").read_text()
    code, _, _ = _run(["export", "--study", "s1", "--storage", url, "--table", "correlations", "--out",
                       str(tmp_path / "c.json")], monkeypatch, capsys)
    assert code == 0 and json.loads((tmp_path / "c.json").read_text())[0]["method"] == "pearson"


@pytest.mark.parametrize("case", ["unknown_study", "unwritable", "bad_storage", "bad_format", "bad_eps"])
def test_report_errors_are_one_line_exit_2(case, tmp_path, monkeypatch, capsys):
    url = _journal_study(tmp_path)
    args = {"unknown_study": ["--study", "nope", "--storage", url],
            "unwritable": ["--study", "s1", "--storage", url, "--out", "/proc/robustarch/r.html"],
            "bad_storage": ["--study", "s1", "--storage", "postgresql://nobody@127.0.0.1:9/none"],
            "bad_format": ["--study", "s1", "--storage", url, "--format", "pdf"],
            "bad_eps": ["--study", "s1", "--storage", url, "--eps", "0.123", "--out", str(tmp_path / "r.html")]}[case]
    code, _, err = _run(["report", *args], monkeypatch, capsys)
    assert code == 2
    line = " ".join(err.split())  # rich wraps the one message at the terminal width
    assert line.startswith("robustarch: error:") and line.count("robustarch: error:") == 1, err
    assert "Traceback" not in err
    assert {"unknown_study": "no study named 'nope'", "unwritable": "cannot write",
            "bad_storage": "cannot open storage", "bad_format": "allowed values",
            "bad_eps": "not on the study's ε grid"}[case] in line


def test_multi_objective_study_reports_its_objectives(tmp_path):
    s = make_study(6, name="mo", objectives=["clean", "robust"], n_flagged=0)
    text = write_report(s, tmp_path / "mo.html", n_boot=100).read_text()
    assert "maximize clean, maximize robust" in text
    assert "Too few complete trials" not in text  # statistics ran (6 ≥ 5 models)
    assert 'id="findings-table"' in text and "Holm-corrected as one family of 6 claims" in text
