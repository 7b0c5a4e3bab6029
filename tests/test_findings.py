"""robustarch.analysis.findings / powerlaw / record (new trial attributes): the power-law fit against
known distributions, Holm against a direct computation, verdicts on designed studies, selection on
validation numbers, sanity severities, rescoring and the phase diagram. Studies are real in-memory
Optuna studies built with `create_trial` (no training)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats
from statsmodels.stats.multitest import multipletests

from robustarch.analysis import analyze
from robustarch.analysis.claims import CLAIMS
from robustarch.analysis.findings import findings_rows, findings_table, holm
from robustarch.analysis.powerlaw import COLUMNS as POWER_COLUMNS
from robustarch.analysis.record import rescore_table, trials_table
from robustarch.analysis.stats import spearman_permutation_p
from robustarch.analysis.summary import sentences
from robustarch.analysis.verdicts import p_keys
from robustarch.errors import UserError
from robustarch.report import build_report

optuna.logging.set_verbosity(optuna.logging.WARNING)
EPS = [0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3]


def power_samples(rng, n, k, e0, never=0.0):
    """Minimal ε with P(min ε ≤ e) = (1 − never)(e / e0)^k on [0, e0] (inverse-CDF sampling)."""
    m = e0 * rng.random(n) ** (1 / k)
    m[rng.random(n) < never] = np.inf
    return m


def test_holm_matches_a_direct_computation():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02, math.nan])
    rng = np.random.default_rng(0)
    q = rng.random(9) ** 3
    direct = [max(min(1.0, (9 - j) * s) for j, s in enumerate(sorted(q)) if s <= qi) for qi in q]
    np.testing.assert_allclose(holm(q), direct)
    for r in (q, np.r_[q, q[:3]], rng.random(12), [0.5, 0.5, 0.9]):  # ties and capped values too
        np.testing.assert_array_equal(holm(r), multipletests(r, method="holm")[1])


def _attrs(
    rng,
    *,
    depth,
    width,
    clean,
    e0,
    k=1.5,
    n=400,
    val=None,
    sanity_invalid=None,
    sanity_warnings=None,
    old_failed=None,
    train_accuracy=None,
    label_noise=0.0,
    max_steps=200,
    samples=None,
):
    n_correct = round(clean * n)
    m = samples(rng, n_correct) if samples else power_samples(rng, n_correct, k, e0)
    sanity = {"curve_non_increasing": True, "gradients_finite_nonzero": old_failed is None}
    a = {
        "arch_summary": f"{depth}x{width}",
        "params": int(9 * width * width * depth),
        "flops": 1000,
        "depth": depth,
        "width": float(width),
        "clean_accuracy": clean,
        "val_accuracy": clean if val is None else val[0],
        "attacked_clean_accuracy": n_correct / n,
        "n_attacked": n,
        "eps": EPS,
        "robust_accuracy": {"worst_case": [float((m > e).sum()) / n for e in EPS]},
        "min_adversarial_eps": [None if math.isinf(v) else float(v) for v in m],
        "minimization_min_eps": [None if math.isinf(v) else float(v) for v in m],
        "margins": [float(v) * 40 if math.isfinite(v) else 99.0 for v in m],
        "sanity": sanity,
        "train_config": {"epochs": 4, "max_steps": max_steps, "label_noise": label_noise, "train_fraction": 1.0},
        "train_accuracy": clean + 0.05 if train_accuracy is None else train_accuracy,
    }
    if val is not None:
        a |= {
            "val_robust_accuracy": {"worst_case": [val[1]] * len(EPS)},
            "val_attacked_clean_accuracy": val[0],
            "val_n_attacked": 100,
            "selection_split": "val",
        }
    if old_failed is None:
        a |= {"sanity_invalid": sanity_invalid or [], "sanity_warnings": sanity_warnings or []}
    return a


def build(models: list[dict], *, sampler="random", rescore=None, seed=0, name="designed"):
    rng = np.random.default_rng(seed)
    study = optuna.create_study(study_name=name, direction="maximize")
    study.set_user_attr("robustarch_config", {"sampler": sampler, "seed": seed})
    study.set_user_attr("objective_eps", 0.05)
    for key, value in (rescore or {}).items():
        study.set_user_attr(f"rescore:{key}", value)
    for spec in models:
        attrs = _attrs(rng, **spec)
        value = (
            attrs["val_robust_accuracy"]["worst_case"][0]
            if "val_robust_accuracy" in attrs
            else attrs["robust_accuracy"]["worst_case"][3]
        )
        study.add_trial(
            create_trial(
                params={"depth": spec["depth"]},
                distributions={"depth": IntDistribution(1, 9)},
                values=[value],
                user_attrs=attrs,
                state=TrialState.COMPLETE,
            )
        )
    return study


def pairs_study(**kw):
    """Ten matched-size pairs (depth 2 vs 8 at half the width: same parameter count); the deeper net
    of each pair is more robust, and robustness tracks clean accuracy."""
    models = []
    for j in range(10):
        base = 0.10 + 0.02 * j
        models.append({"depth": 2, "width": 32 + 4 * j, "clean": 0.70 + 0.02 * j, "e0": base})
        models.append({"depth": 8, "width": 16 + 2 * j, "clean": 0.71 + 0.02 * j, "e0": base + 0.04})
    return build(models, **kw)


@pytest.fixture(scope="module")
def designed():
    return analyze(pairs_study(), n_boot=300)


def test_findings_verdicts_on_a_designed_study(designed):
    f = designed.tables["findings"].set_index("key")
    assert list(f.index) == list(CLAIMS)  # no claims named: every registered claim, in registry order
    assert f.loc["robust_tracks_clean", "verdict"] == "supported"
    assert f.loc["power_law", "verdict"] != "contradicted"  # exact power laws: never rejected here
    assert f.loc["power_law", "ci_low"] < 1.5 < f.loc["power_law", "ci_high"]
    assert f.loc["margin_explains_slope", "verdict"] == "supported"  # margins ∝ minimal ε per sample
    assert f.loc["slope_matches_margin_tail", "verdict"] == "supported"
    assert f.loc["deeper_more_robust", "verdict"] == "supported" and f.loc["deeper_more_robust", "n"] == 10
    # 20 models: below the size claim's minimum n, and no label noise: skipped with the reason, no p
    assert f.loc["size_adds_little", "verdict"] == "inconclusive" and "needs ≥ 35" in f.loc["size_adds_little", "text"]
    assert "label_noise is constant" in f.loc["robust_falls_with_memorization", "text"]
    assert f.loc[["size_adds_little", "robust_falls_with_memorization"], "p_value"].isna().all()
    # The numbers are the tests they name, on the models, with Holm over exactly the claims with a p.
    u = designed.used_trials
    rho = stats.spearmanr(u["robust_accuracy"], u["clean_accuracy"])
    assert f.loc["robust_tracks_clean", "value"] == pytest.approx(rho.statistic)
    # 20 models: the permutation p (scipy's t approximation runs liberal with few models and ties)
    perm = spearman_permutation_p(u["robust_accuracy"].to_numpy(), u["clean_accuracy"].to_numpy())
    assert f.loc["robust_tracks_clean", "p_value"] == pytest.approx(perm)
    assert perm == pytest.approx(rho.pvalue, abs=0.01)
    # one Holm family over every p that can give a verdict: the claims' own p and their other paths
    power = designed.tables["power_law"]
    rows = findings_rows(designed.used_trials, power[power["in_statistics"].astype(bool)], n_boot=300)
    best = [
        min(r[k] for k in p_keys(r) if math.isfinite(r.get(k, math.nan)))
        for r in rows
        if not r["reason"] and any(math.isfinite(r.get(k, math.nan)) for k in p_keys(r))
    ]
    tracks = [r for r in rows if r["key"] == "robust_tracks_clean"][0]
    assert tracks["p_holm"] == pytest.approx(holm(best)[best.index(tracks["p_value"])])
    m = len(best)
    assert (f["family_m"] == m).all() and f"Holm-adjusted over {m} claims" in f.loc["robust_tracks_clean", "text"]
    pairs = designed.tables["depth_pairs"]
    assert len(pairs) == 10 and (pairs["params_ratio"] == 1).all() and pairs["thinner"].all()
    assert (pairs["clean_difference"].abs() <= 0.02).all()
    assert f.loc["deeper_more_robust", "p_value"] == pytest.approx(stats.wilcoxon(pairs["robust_difference"]).pvalue)
    # the estimate is the pseudo-median the signed-rank test is about, not the median
    d = pairs["robust_difference"].to_numpy()
    walsh = [(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))]
    assert f.loc["deeper_more_robust", "value"] == pytest.approx(np.median(walsh))
    assert "mechanical" in f.loc["robust_tracks_clean", "text"]
    assert "10 of 10 pairs the deeper net is also the thinner" in f.loc["deeper_more_robust", "text"]
    assert designed.caveat is None  # a random sampler


def test_too_few_pairs_and_a_biased_sampler_are_said(designed):
    a = analyze(
        build(
            [
                {"depth": 2 + i % 3, "width": 8 * (1 + i), "clean": 0.8 + 0.01 * i, "e0": 0.1 + 0.01 * i}
                for i in range(8)
            ],
            sampler="tpe",
        ),
        n_boot=100,
    )
    f = a.tables["findings"].set_index("key")
    assert f.loc["deeper_more_robust", "verdict"] == "inconclusive"
    assert "disjoint matched pair(s)" in f.loc["deeper_more_robust", "text"]
    assert "tpe sampler" in a.caveat and "--sampler random" in a.caveat
    html = build_report(pairs_study(sampler="nsgaii"), n_boot=50)
    assert 'id="sampler-caveat"' in html and "chosen by the nsgaii sampler" in html


def test_summary_claims_no_power_law_the_fits_reject():
    def logistic(rng, n):
        u = rng.random(n)
        return np.clip(0.12 + 0.02 * np.log(u / (1 - u)), 1e-4, None)

    models = [
        {"depth": 2, "width": 16 + 4 * i, "clean": 0.8 + 0.02 * i, "e0": 0.1, "n": 1500, "samples": logistic}
        for i in range(6)
    ]
    a = analyze(build(models), n_boot=100)
    f = a.tables["findings"].set_index("key")
    assert f.loc["power_law", "verdict"] == "contradicted"
    text = " ".join(sentences(a))
    assert "Not a single power law" in text and "test rejected" in text
    assert "local slope rises" in text  # an S-shaped CDF bends upward at its small-ε end
    assert "Consistent with a power law" not in text and "follows a power law" not in text


def test_findings_on_a_plain_table_skip_claims_without_data():
    u = pd.DataFrame(
        {
            "trial": range(12),
            "clean_accuracy": np.linspace(0.8, 0.95, 12),
            "robust_accuracy": np.linspace(0.1, 0.5, 12) ** 2,
            "log10_params": 5.0,
            "params": 1e5,
        }
    )
    f = findings_table(
        u,
        pd.DataFrame(columns=POWER_COLUMNS),
        claims=["robust_tracks_clean", "size_adds_little", "power_law"],
        n_boot=50,
    ).set_index("key")
    assert f.loc["robust_tracks_clean", "verdict"] == "supported" and f.loc["robust_tracks_clean", "family_m"] == 1
    assert f.loc["size_adds_little", "text"].endswith("log10_params is constant in the study.")
    assert "0 model(s) with a fit" in f.loc["power_law", "text"]
    with pytest.raises(UserError, match="unknown claim.*no_such_claim.*known: robust_tracks_clean"):
        findings_table(u, pd.DataFrame(columns=POWER_COLUMNS), claims=["no_such_claim"])


def test_selection_uses_validation_and_quotes_test_numbers():
    # Trial 0 is the most robust on test but not on validation; trial 2 is the validation choice.
    models = [
        {"depth": 2, "width": 16, "clean": 0.90, "e0": 0.40, "val": (0.85, 0.30)},
        {"depth": 3, "width": 16, "clean": 0.88, "e0": 0.15, "val": (0.86, 0.35)},
        {"depth": 4, "width": 16, "clean": 0.86, "e0": 0.20, "val": (0.90, 0.60)},
        {"depth": 5, "width": 16, "clean": 0.84, "e0": 0.12, "val": (0.80, 0.20)},
        {"depth": 6, "width": 16, "clean": 0.82, "e0": 0.11, "val": (0.79, 0.10)},
    ]
    study = build(models)
    raw = trials_table(study)
    assert raw["val_robust_accuracy"].tolist() == [0.30, 0.35, 0.60, 0.20, 0.10] and set(raw["selection_split"]) == {
        "val"
    }
    a = analyze(study, n_boot=100)
    t = a.tables["trials"].set_index("trial")
    assert t["robust_accuracy"].idxmax() == 0 and a.selection_split == "val"
    best = a.best_trial
    assert int(best["trial"]) == 2
    assert set(a.tables["pareto_front"]["trial"]) == {2}  # dominates the others on validation numbers
    s = " ".join(sentences(a))
    assert (
        "trial 2 (4x16), both chosen on the validation subset" in s
        and f"test robust accuracy {t.loc[2, 'robust_accuracy']:.3f}" in s
    )
    assert "chosen on a validation subset" in build_report(build(models), n_boot=50)
    old = analyze(build([{k: v for k, v in m.items() if k != "val"} for m in models]), n_boot=100)
    assert old.selection_split == "test" and int(old.best_trial["trial"]) == 0
    assert "chosen on the test split itself" in " ".join(sentences(old))


def test_invalid_checks_exclude_warnings_do_not_and_old_failures_are_invalid():
    models = [{"depth": 2 + i, "width": 16, "clean": 0.8 + 0.02 * i, "e0": 0.1 + 0.02 * i} for i in range(7)]
    models[0]["sanity_invalid"] = ["gradients_finite_nonzero"]
    models[1]["sanity_warnings"] = ["curve_non_increasing"]
    models[2]["old_failed"] = True  # a study stored before severities: a failed check is invalid
    study = build(models)
    t = trials_table(study).set_index("trial")
    assert (
        t.loc[0, "sanity_invalid"] == "gradients_finite_nonzero"
        and t.loc[1, "sanity_warnings"] == "curve_non_increasing"
    )
    assert t.loc[2, "sanity_invalid"] == "gradients_finite_nonzero"
    a = analyze(study, n_boot=100)
    used = set(a.used_trials["trial"])
    assert used == {1, 3, 4, 5, 6} and a.n_flagged == 2
    assert '1 model(s) failed a sanity check of severity "warning"' in " ".join(sentences(a))


def test_rescore_table_and_report():
    rescore = {
        3: {
            "suite": "strong",
            "split": "test",
            "eps": [0.05, 0.1],
            "clean_accuracy": 0.9,
            "n_attacked": 400,
            "robust_accuracy": {"worst_case": [0.2, 0.05]},
            "seconds": 12.0,
            "sanity_invalid": [],
        },
        5: {
            "suite": "strong",
            "split": "test",
            "eps": [0.05],
            "clean_accuracy": 0.9,
            "n_attacked": 400,
            "robust_accuracy": {"worst_case": [0.0]},
            "seconds": 9.0,
            "sanity_invalid": ["random_outputs"],
        },
    }
    study = pairs_study(rescore=rescore)
    r = rescore_table(study)
    assert r.loc[r["trial"] == 5, "sanity_invalid"].item() == "random_outputs"
    r = r[r["trial"] == 3]
    search = study.trials[3].user_attrs["robust_accuracy"]["worst_case"]
    assert list(r["eps"]) == [0.05, 0.1]
    assert r["search_robust_accuracy"].tolist() == [search[EPS.index(0.05)], search[EPS.index(0.1)]]
    assert r["drop"].tolist() == pytest.approx([search[3] - 0.2, search[4] - 0.05])
    html = build_report(study, n_boot=50)
    assert 'id="rescore-table"' in html and "1 model(s) were re-attacked with the strong suite" in html
    assert "1 rescore(s) failed an invalid-severity sanity check" in html  # left out of the quoted drop
    assert f"drops by {search[3] - 0.2:.3f}".replace("-", "−") in html


def test_phase_diagram_over_label_noise_and_training_length():
    models = [
        {
            "depth": 2,
            "width": 16 + i,
            "clean": 0.95 - 0.3 * noise - 0.02 * i,
            "e0": 0.1 + 0.01 * i,
            "label_noise": noise,
            "max_steps": steps,
            "train_accuracy": 0.99 - noise * (steps / 800),
        }
        for i, (noise, steps) in enumerate([(n, s) for n in (0.0, 0.2, 0.4) for s in (100, 400)])
    ]
    a = analyze(build(models), n_boot=50)
    p = a.tables["phase_diagram"]
    assert set(p["metric"]) == {"clean_accuracy", "generalization_gap", "robust_accuracy"}
    assert set(p["load_knob"]) == {"label_noise"} and set(p["temperature_knob"]) == {"max_steps"}
    cell = p[(p["metric"] == "generalization_gap") & (p["load_bin"] == "0.4") & (p["temperature_bin"] == "400")]
    t = a.tables["trials"].set_index("trial")
    assert cell["mean"].item() == pytest.approx(t.loc[5, "train_accuracy"] - t.loc[5, "clean_accuracy"])
    html = build_report(build(models), n_boot=50)
    assert 'id="phase"' in html and 'id="phase-label_noise-generalization_gap"' in html


def test_old_studies_without_new_attributes_still_analyse():
    from _studies import make_study

    a = analyze(make_study(8, n_flagged=1, seed=3), n_boot=50)
    assert a.selection_split == "test" and a.tables["rescore"].empty
    assert len(a.tables["findings"]) == len(CLAIMS)
    assert pd.isna(a.tables["trials"]["val_robust_accuracy"]).all()


def test_recipes_name_their_claims_and_unknown_names_are_refused(tmp_path):
    from robustarch.commands import check_claims
    from robustarch.study import load_recipe

    cubuk, phase = load_recipe("cubuk2017-digits"), load_recipe("phase-diagram-digits")
    assert "universality" in cubuk.studies[0][1].claims and "power_law" in cubuk.studies[0][1].claims
    assert phase.studies[0][1].claims[:2] == ("robust_falls_with_memorization", "early_stop_preserves_robustness")
    check_claims(cubuk.studies)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndataset: digits\nclaims: [robust_tracks_clean, bogus_claim]\n")
    with pytest.raises(UserError, match="unknown claim\\(s\\) bogus_claim"):
        check_claims(load_recipe(str(bad)).studies)
    bad.write_text("name: bad\ndataset: digits\nclaims: [1, 2]\n")
    with pytest.raises(UserError, match="claims"):
        load_recipe(str(bad))


def test_methods_quote_each_tests_simulated_error_rates_only_where_measured():
    from robustarch.analysis.errorrates import RATES, error_rate_lines

    rows = [
        {"key": "robust_tracks_clean", "claim": "Robust accuracy rises", "test": "Spearman", "reason": None},
        {"key": "size_adds_little", "claim": "Size adds little", "test": "TOST", "reason": "20 usable models"},
    ]
    size = RATES["robust_tracks_clean"][40][0]
    lines = error_rate_lines(rows, 35)  # nearest simulated scale: 40 models
    assert len(lines) == 1 and "at 40 models (1000 simulated studies)" in lines[0]  # a skipped claim: no test to rate
    assert f"size {100 * size:.1f}%" in lines[0]
    assert "200 models" in error_rate_lines(rows, 180)[0]
    for n in (4, 150):  # a 3–5-model study is not a 20-model one: no rate measured elsewhere is quoted
        line = error_rate_lines(rows, n)[0]
        assert f"not measured at this n ({n} models" in line and "size" not in line.split(";")[1]


def test_the_table_shows_the_p_of_the_test_that_gave_the_verdict():
    """A contradicted equivalence claim showed its equivalence test's p (1.000) in the p column, while
    the verdict came from the test of lying beyond the margin."""
    rng = np.random.default_rng(4)
    size = rng.uniform(4, 6, 80)
    clean = rng.uniform(0.8, 0.95, 80)
    u = pd.DataFrame(
        {
            "trial": range(80),
            "clean_accuracy": clean,
            "robust_accuracy": 0.1 * (size - 4) + 0.2 * (clean - 0.8) + rng.normal(0, 0.01, 80),
            "log10_params": size,
            "params": 10**size,
        }
    )
    f = findings_table(
        u, pd.DataFrame(columns=POWER_COLUMNS), claims=["robust_tracks_clean", "size_adds_little"], n_boot=200
    ).set_index("key")
    size_row, tracks = f.loc["size_adds_little"], f.loc["robust_tracks_clean"]
    assert size_row["verdict"] == "contradicted" and size_row["decided_by"] == "p_outside"
    assert not size_row["p_value"] <= 0.05 and size_row["p_decided"] <= 0.05 and size_row["p_decided_holm"] <= 0.05
    assert tracks["decided_by"] == "p_value" and tracks["p_decided_holm"] == tracks["p_holm"]
