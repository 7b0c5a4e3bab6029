"""robustarch.analysis.record: trial user attributes → tidy tables, for every trial state and objective kind."""
from __future__ import annotations

import numpy as np
import optuna

from _studies import make_study
from robustarch.analysis import analyze
from robustarch.analysis.record import robustness_table, samples_table, trials_table

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
