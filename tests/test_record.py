"""robustarch.analysis.record: trial user attributes → tidy tables, for every trial state and objective kind."""

from __future__ import annotations

import numpy as np
import optuna
from _studies import make_study
from optuna.trial import create_trial

from robustarch.analysis import analyze
from robustarch.analysis.record import robustness_table, samples_table, trials_table, val_robustness_table

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_records_read_failed_pruned_and_multi_objective_trials():
    s = make_study(6, objectives=["clean", "robust", "size"], n_flagged=0)
    t = trials_table(s)
    assert {"objective_clean", "objective_robust", "objective_size"} <= set(t.columns)
    done = t[t["state"] == "COMPLETE"]
    assert (done["objective_clean"] == done["clean_accuracy"]).all()
    assert set(t.loc[t["state"] == "FAIL", "fail_reason"]) == {"diverged"}
    assert t.loc[t["state"] == "PRUNED", "fail_reason"].str.startswith("over_budget").all()
    samples = samples_table(s)
    assert samples["trial"].nunique() == 6 and np.isinf(samples["min_adversarial_eps"]).any()
    assert (samples["broken"] == np.isfinite(samples["min_adversarial_eps"])).all()
    a = analyze(s, n_boot=100)
    assert a.enough and set(a.tables["correlations"]["n"]) == {6}


def test_robustness_table_is_tidy():
    s = make_study(3, n_failed=1)
    r = robustness_table(s)
    assert len(r) == 3 * 4 * 8  # complete trials × (3 attacks + worst case) × 8 ε; failed trials absent
    wc = r[r["attack"] == "worst_case"].set_index(["trial", "eps"])["robust_accuracy"]
    assert wc.loc[(0, 0.05)] == s.trials[0].user_attrs["robust_accuracy"]["worst_case"][3]


def test_validation_curves_choose_the_headline_eps():
    """Trials that stored validation robust accuracy give one row per ε; the headline ε is the grid ε
    where the median model keeps about half its validation clean accuracy, not the objective ε."""
    base = make_study(8, n_flagged=0, n_failed=1)
    keep = [1.0, 0.95, 0.9, 0.8, 0.55, 0.4, 0.2, 0.05]  # share of clean accuracy kept at each grid ε
    s = optuna.create_study(study_name="with-val")
    for k, value in base.user_attrs.items():
        s.set_user_attr(k, value)
    for t in base.get_trials():
        attrs = dict(t.user_attrs)
        if t.state.name == "COMPLETE":
            clean = attrs["attacked_clean_accuracy"]
            attrs |= {
                "val_attacked_clean_accuracy": clean,
                "val_robust_accuracy": {"worst_case": [clean * k for k in keep]},
            }
        s.add_trial(
            create_trial(
                params=t.params, distributions=t.distributions, values=t.values, user_attrs=attrs, state=t.state
            )
        )
    v = val_robustness_table(s)
    assert len(v) == 8 * len(keep) and set(v["eps"]) == set(s.trials[0].user_attrs["eps"])
    a = analyze(s, n_boot=50)
    assert a.eps == s.trials[0].user_attrs["eps"][4] != s.user_attrs["objective_eps"]
    assert "validation" in a.eps_choice
    assert a.tables["trials"]["val_robust_accuracy"].dropna().size == 8
