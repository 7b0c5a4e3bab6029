"""`robustarch retrain`: the top architectures trained again with fresh seeds, stored per seed, so
that a stopped retrain resumes with the next seed; the report sets observed against predicted."""

from __future__ import annotations

import dataclasses

import pytest
from _tiny_study import robustarch, tiny_study

from robustarch.analysis import analyze, robustness_table, trials_table
from robustarch.analysis.retrained import candidates
from robustarch.study import create_or_resume, open_storage, run_study
from robustarch.study.replicates import derive_seed, retrain_seed
from robustarch.study.retrain import RETRAIN_PREFIX, pending_retrains, retrain


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("retrain")
    _, config, storage = tiny_study(folder, "base")
    config = dataclasses.replace(config, replicates=2, replicate_share=1.0)
    study, config = create_or_resume(open_storage(storage), "rt", config)
    run_study(study, config, n_trials=3)
    return folder, study, config, storage


def _targets(study, k):
    best, _ = candidates(trials_table(study), robustness_table(study), study.user_attrs["objective_eps"], k)
    return [(key, int(trials.split(",")[0])) for key, trials in zip(best["arch_key"], best["trials"])]


def test_a_stopped_retrain_resumes_with_the_next_seed(replicated):
    folder, study, config, _ = replicated
    targets = _targets(study, 1)
    assert len(targets) == 1

    def stop_after_first(key, r, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retrain(study, config, targets, 2, on_model=stop_after_first)
    assert pending_retrains(study, targets, 2) == [(targets[0][0], targets[0][1], 1)]  # the first is stored
    done = retrain(study, config, targets, 2)
    assert list(done) == [f"{RETRAIN_PREFIX}{targets[0][0]}:1"]  # only the second was trained now
    assert retrain(study, config, targets, 2) == {}  # a third run has nothing to do
    records = [v for k, v in study.user_attrs.items() if k.startswith(RETRAIN_PREFIX)]
    key = targets[0][0]
    assert sorted(r["seed"] for r in records) == sorted(retrain_seed(config.seed, key, r) for r in (0, 1))
    searched = {t.user_attrs["provenance"]["seeds"]["training"] for t in study.get_trials()}
    assert not searched & {r["seed"] for r in records}  # fresh seeds
    assert derive_seed(config.seed, key, 0, 0) != retrain_seed(config.seed, key, 0)
    table = analyze(study, n_boot=50).tables["retrain"]
    assert list(table["arch_key"]) == [key] and table["retrained_seeds"].iloc[0] == 2


def test_the_retrain_command_prints_observed_against_predicted(replicated):
    folder, study, _, storage = replicated
    proc = robustarch("retrain", "--study", "rt", "--storage", storage, "--top", "1", "--seeds", "2", cwd=folder)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "observed" in out and "predicted for fresh seeds" in out and "retrained" in out and "report:" in out
    assert "Architecture or luck" in (folder / "reports" / "rt.html").read_text()
    bad = robustarch("retrain", "--study", "nope", "--storage", storage, cwd=folder)
    _, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and err.count("\n") == 1
