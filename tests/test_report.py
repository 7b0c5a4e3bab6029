"""The HTML report and the table exports: self-contained, escaped, honest about too few trials;
the `report` / `export` commands and their one-line errors."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import optuna
import pandas as pd
import pytest
from _cli import run_cli_output as _run
from _studies import make_study
from markupsafe import escape
from optuna.trial import create_trial

from robustarch.analysis import analyze, analyze_pair, compare_tables
from robustarch.errors import UserError
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
    sentence = a.tables["findings"].set_index("key").loc["robust_tracks_clean", "text"]
    for number in (f"ρ = {row['coef']:.2f}", f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]", f"n = {int(row['n'])}"):
        assert number.replace("-", "−") in sentence, (number, sentence)
    assert "2 model(s) failed an attack sanity check and are excluded" in html
    f = a.tables["findings"].set_index("key")
    assert str(escape(f.loc["robust_tracks_clean", "text"])) in html
    # The summary states a relation only as a finding, worded from its verdict.
    assert "grows as a power of ε" not in html and "rises with depth" not in html
    assert "held fixed" in html and "per extra cell" in html and "layer" not in html
    assert "--include-flagged" in html
    # The methods section names what a reader needs to reproduce the study.
    for fact in (
        "1068 train / 189 validation / 540 test",
        "LinfPGD",
        "{&#39;steps&#39;: 10",
        "linf",
        "train_fraction",
        "seed 2",
    ):
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
    assert {
        "trials",
        "correlations",
        "partial_correlations",
        "ols_coefficients",
        "power_law",
        "power_law_summary",
        "pareto_front",
        "depth_width",
        "phase_diagram",
        "margin_quantiles",
        "summary",
    } <= names
    doc = json.loads(write_report(study, tmp_path / "t.json", fmt="json", n_boot=100).read_text())
    assert set(doc) == names
    assert len(doc["trials"]) == 28 and len(doc["correlations"]) > 0
    folder = write_report(study, tmp_path / "csv", fmt="csv", n_boot=100)
    assert {p.stem for p in folder.glob("*.csv")} == names
    corr = pd.read_csv(folder / "correlations.csv")
    assert corr.loc[0, "coef"] == pytest.approx(doc["correlations"][0]["coef"])


def _retrained(study, name, gain, seed=0, rename=False):
    """The same architectures as `study` "trained again": robust accuracy raised by about `gain`
    (capped by the clean accuracy), or with every architecture renamed (nothing to pair)."""
    rng = np.random.default_rng(seed)
    s = optuna.create_study(study_name=name)
    for k, v in study.user_attrs.items():
        s.set_user_attr(k, v)
    for t in study.get_trials():
        a = copy.deepcopy(t.user_attrs)
        if "robust_accuracy" in a:
            up = gain * (1 + 0.5 * rng.random())
            a["robust_accuracy"]["worst_case"] = [
                min(a["attacked_clean_accuracy"], v + up) for v in a["robust_accuracy"]["worst_case"]
            ]
        if rename and "arch_summary" in a:
            a["arch_summary"] += " (other)"
        s.add_trial(
            create_trial(params=t.params, distributions=t.distributions, values=t.values, user_attrs=a, state=t.state)
        )
    return s


def _edited(study, name, edit):
    """A copy of `study` whose complete trials' user attributes went through `edit` (in place)."""
    s = optuna.create_study(study_name=name)
    for k, v in study.user_attrs.items():
        s.set_user_attr(k, v)
    for t in study.get_trials():
        a = copy.deepcopy(t.user_attrs)
        if t.state.name == "COMPLETE":
            edit(a)
        s.add_trial(
            create_trial(params=t.params, distributions=t.distributions, values=t.values, user_attrs=a, state=t.state)
        )
    return s


def _methods(html: str) -> str:
    return html[html.index('<h2 id="methods">') :]


def test_methods_lists_only_the_settings_the_recipe_uses(study):
    unused = re.compile(r"\b(eps|attack_steps|trades_beta)(=| in | from )")
    standard = _edited(study, "standard", lambda a: a["train_config"].update(eps=0.1, attack_steps=5, trades_beta=6.0))
    assert "recipe=standard" in _methods(build_report(standard, n_boot=100))
    assert not unused.search(_methods(build_report(standard, n_boot=100)))
    pgd = _edited(
        study, "pgd", lambda a: a["train_config"].update(recipe="pgd", eps=0.1, attack_steps=5, trades_beta=6.0)
    )
    methods = _methods(build_report(pgd, n_boot=100))
    assert "eps=0.1" in methods and "attack_steps=5" in methods and "trades_beta" not in methods


def test_a_constant_axis_leaves_its_plot_out_and_says_why():
    one_net = _edited(
        make_study(12, seed=1, n_flagged=0),
        "one-net",
        lambda a: a.update(depth=2, width=16.0, params=5000, flops=640000, arch_summary="stem8 2x16|basic"),
    )
    html = build_report(one_net, n_boot=100)
    assert 'id="robust-vs-params"' not in html and 'id="depth-width"' not in html
    assert "Plot robust accuracy vs parameters left out: every model has the same params (5000)" in html
    assert "Plot depth × width map left out: every model has the same depth (2)" in html
    assert 'id="robust-vs-clean_accuracy"' in html and 'id="margins"' in html  # the axes that vary stay


def _svg(html: str, plot_id: str) -> str:
    start = html.index(f'id="{plot_id}"')
    return html[start : html.index("</svg>", start)]


def test_plot_legends_and_ticks(html):
    margins = _svg(html, "margins")
    assert margins.count("clean acc. ") == 3 and "flagged" in margins  # the line colours are explained
    params = _svg(html, "robust-vs-params")
    assert 'class="mark front"' in params and "Pareto-optimal" in params  # the orange points are named
    ticks = re.findall(r'text-anchor="end">([^<]+)</text>', _svg(html, "slopes"))
    assert ticks and all(float(t).is_integer() for t in ticks)  # counts of models are whole numbers
    depth_width = _svg(html, "depth-width")
    assert "rotate(-35" not in depth_width  # short depth labels stay upright


def test_bins_are_labelled_as_a_reader_writes_them():
    from robustarch.analysis.analyzer import grid_map

    t = pd.DataFrame(
        {"depth": [1, 2, 3, 3], "width": [26.666667, 32.0, 26.666667, 112.5], "robust_accuracy": [0.1, 0.2, 0.3, 0.4]}
    )
    g = grid_map(t, "depth", "width")
    assert set(g["width_bin"]) == {"26.7", "32", "112"} and set(g["depth_bin"]) == {"1", "2", "3"}


def test_comparison_pairs_the_same_architectures(study, tmp_path):
    other = _retrained(study, "adversarial", 0.1)
    a, b = analyze_pair(study, other, n_boot=200)
    tables = compare_tables(a, b, n_boot=200)
    assert len(tables["pairs"]) == a.n_used == b.n_used
    robust = tables["metrics"].set_index("metric").loc["robust accuracy at ε"]
    assert robust["design"] == "paired" and robust["n_pairs"] == a.n_used
    assert robust["diff_b_minus_a"] > 0 and robust["ci_low"] > 0 and robust["p_value"] < 1e-3
    text = write_comparison(study, other, tmp_path / "cmp.html", n_boot=100).read_text()
    assert 'id="paired"' in text and "Wilcoxon signed-rank" in text and 'id="pairs-table"' in text
    assert 'id="compare-pairs"' in text and "Mann–Whitney" not in text
    assert EVIL not in text and "&lt;script&gt;" in text
    assert 'id="compare-scatter"' in text and 'id="compare-curves"' in text


def test_comparison_without_common_architectures_is_independent_and_says_so(study, tmp_path):
    other = _retrained(study, "renamed", 0.1, rename=True)
    text = write_comparison(study, other, tmp_path / "cmp.html", n_boot=100).read_text()
    assert 'id="independent"' in text and "cannot be paired" in text and "Mann–Whitney" in text


def test_identical_studies_and_the_same_study_twice(study, tmp_path):
    twin = _retrained(study, "twin", 0.0)
    text = write_comparison(study, twin, tmp_path / "twin.html", n_boot=100).read_text()
    assert 'id="identical"' in text and "zero by construction" in text
    with pytest.raises(UserError, match="twice"):
        write_comparison(study, study, tmp_path / "same.html", n_boot=100)


def _journal_study(tmp_path, name="s1"):
    from optuna.storages.journal import JournalFileBackend

    url = str(tmp_path / "x.journal")
    storage = optuna.storages.JournalStorage(JournalFileBackend(url))
    make_study(12, name=name, storage=storage, seed=4)
    return url


def test_report_command_writes_page_exports_and_comparison(tmp_path, monkeypatch, capsys):
    url = _journal_study(tmp_path)
    from optuna.storages.journal import JournalFileBackend

    make_study(8, name="s2", storage=optuna.storages.JournalStorage(JournalFileBackend(url)), seed=6)
    code, out, _ = _run(
        ["report", "--study", "s1", "--storage", url, "--out", str(tmp_path / "r.html"), "--include-flagged"],
        monkeypatch,
        capsys,
    )
    assert code == 0 and "r.html" in out
    assert "included in the statistics because include-flagged was set" in (tmp_path / "r.html").read_text()
    code, _, _ = _run(
        ["report", "--study", "s1", "--storage", url, "--format", "csv", "--out", str(tmp_path / "tables")],
        monkeypatch,
        capsys,
    )
    assert code == 0 and (tmp_path / "tables" / "power_law.csv").exists()
    code, _, _ = _run(
        ["report", "--compare", "s1", "s2", "--storage", url, "--out", str(tmp_path / "c.html")], monkeypatch, capsys
    )
    assert code == 0 and "s2" in (tmp_path / "c.html").read_text()
    code, _, _ = _run(
        ["export", "--study", "s1", "--storage", url, "--table", "correlations", "--out", str(tmp_path / "c.json")],
        monkeypatch,
        capsys,
    )
    assert code == 0 and json.loads((tmp_path / "c.json").read_text())[0]["method"] == "pearson"


@pytest.mark.parametrize("case", ["unknown_study", "unwritable", "bad_storage", "bad_format", "bad_eps", "same_study"])
def test_report_errors_are_one_line_exit_2(case, tmp_path, monkeypatch, capsys):
    url = _journal_study(tmp_path)
    args = {
        "unknown_study": ["--study", "nope", "--storage", url],
        "unwritable": ["--study", "s1", "--storage", url, "--out", "/proc/robustarch/r.html"],
        "bad_storage": ["--study", "s1", "--storage", "postgresql://nobody@127.0.0.1:9/none"],
        "bad_format": ["--study", "s1", "--storage", url, "--format", "pdf"],
        "bad_eps": ["--study", "s1", "--storage", url, "--eps", "0.123", "--out", str(tmp_path / "r.html")],
        "same_study": ["--compare", "s1", "s1", "--storage", url, "--out", str(tmp_path / "c.html")],
    }[case]
    code, _, err = _run(["report", *args], monkeypatch, capsys)
    assert code == 2
    line = " ".join(err.split())  # rich wraps the one message at the terminal width
    assert line.startswith("robustarch: error:") and line.count("robustarch: error:") == 1, err
    assert "Traceback" not in err
    expected = {
        "unknown_study": ("no study named 'nope'",),
        "unwritable": ("cannot write", "does not exist"),
        "bad_storage": ("cannot open storage",),
        "bad_format": ("allowed values",),
        "bad_eps": ("not on the study's ε grid",),
        "same_study": ("two different studies",),
    }[case]
    assert any(e in line for e in expected), line


def test_multi_objective_study_reports_its_objectives(tmp_path):
    s = make_study(6, name="mo", objectives=["clean", "robust"], n_flagged=0)
    text = write_report(s, tmp_path / "mo.html", n_boot=100).read_text()
    assert "maximize clean, maximize robust" in text
    assert "Too few complete trials" not in text  # statistics ran (6 ≥ 5 models)
    assert 'id="findings-table"' in text and "Holm" in text


def test_two_real_studies_of_one_seed_pair_trial_by_trial(tmp_path):
    """Standard vs fast adversarial training of the same sampled architectures (the
    adversarial-training recipe in miniature): trial k of one study pairs with trial k of the other."""
    from _tiny_study import write_tiny

    from robustarch.study import StudyConfig, create_or_resume, open_storage, run_study

    space, suite = write_tiny(tmp_path)
    storage, studies = open_storage(str(tmp_path / "x.journal")), []
    for name, recipe in (("standard", "standard"), ("fast-at", "fgsm-rs")):
        config = StudyConfig(
            space=str(space), suite=str(suite), sampler="random", seed=0, training={"recipe": recipe, "eps": 0.1}
        )
        s, config = create_or_resume(storage, name, config)
        run_study(s, config, n_trials=4, threads=1)
        studies.append(s)
    a, b = analyze_pair(*studies, n_boot=100)
    pairs = compare_tables(a, b, n_boot=100)["pairs"]
    assert list(pairs["trial_a"]) == list(pairs["trial_b"]) == [0, 1, 2, 3]
    text = write_comparison(*studies, tmp_path / "c.html", n_boot=100).read_text()
    assert 'id="paired"' in text and "4 architecture(s) were trained in both studies" in text


def test_an_undefined_interval_reads_undefined_not_empty_brackets(html):
    """An interval with no defined end printed "[, ]" in the findings and raw/corrected tables."""
    from robustarch.report.html import _ci

    assert _ci(float("nan"), float("nan")) == "undefined"
    assert _ci(0.1, float("nan")) == "[0.100, undefined]"
    assert _ci(-0.25, 0.5) == "[-0.250, 0.500]"
    assert "[, ]" not in html and "[, " not in html


def test_a_storage_of_one_study_needs_no_name_and_a_missing_one_is_not_created(tmp_path, monkeypatch, capsys):
    """`report` without --study on a one-study storage reports it; with two it names them; a storage
    file that does not exist is refused, and not left behind as an empty journal or database."""
    url = _journal_study(tmp_path)
    code, out, err = _run(["report", "--storage", url, "--out", str(tmp_path / "r.html")], monkeypatch, capsys)
    assert code == 0 and (tmp_path / "r.html").is_file(), err
    from optuna.storages.journal import JournalFileBackend

    make_study(6, name="s2", storage=optuna.storages.JournalStorage(JournalFileBackend(url)), seed=6)
    code, _, err = _run(["report", "--storage", url, "--out", str(tmp_path / "r2.html")], monkeypatch, capsys)
    assert code == 2 and "holds 2 studies: s1, s2" in " ".join(err.split()) and not (tmp_path / "r2.html").exists()
    for storage, path in (
        (str(tmp_path / "none.journal"), tmp_path / "none.journal"),
        (f"sqlite:///{tmp_path}/n.db", tmp_path / "n.db"),
    ):
        for args in (["report", "--study", "s1"], ["export", "--study", "s1", "--out", str(tmp_path / "t.csv")]):
            code, _, err = _run([*args, "--storage", storage], monkeypatch, capsys)
            assert code == 2 and "does not exist" in " ".join(err.split()), err
            assert not path.exists()
