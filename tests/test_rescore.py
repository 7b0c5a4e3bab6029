"""`rescore` for people: best models first, the drop measured on the samples the search attacked,
stopped runs resume with the next model, threads and progress. One tiny study (4 trials, ~10 s) is
searched once; each test rescores its own copy of the journal (checkpoints are only read)."""

from __future__ import annotations

import re
import shutil

import optuna
import pytest
from _tiny_study import TINY_SUITE, robustarch, tiny_study, worker_env

from robustarch.analysis.record import rescore_table
from robustarch.metrics import WORST_CASE
from robustarch.study import RESCORE_PREFIX, open_storage, rescore, run_study
from robustarch.study.rescore import rescore_candidates

N_TRIALS = 4


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rescore")
    study, config, storage = tiny_study(folder, "r")
    run_study(study, config, n_trials=N_TRIALS, threads=1, artifacts=folder / "ckpt")
    return folder, config, storage


@pytest.fixture
def copy(searched, tmp_path):
    """This test's own copy of the searched study: (study, config, storage, checkpoint folder)."""
    folder, config, storage = searched
    journal = tmp_path / "r.journal"
    shutil.copyfile(storage, journal)
    study = optuna.load_study(study_name="r", storage=open_storage(str(journal)))
    return study, config, str(journal), folder / "ckpt"


def suite_file(folder, samples: int):
    """The search's own tiny suite on `samples` test samples (the search attacked the first 50)."""
    path = folder / f"suite-{samples}.yaml"
    path.write_text(TINY_SUITE.replace("samples: 50", f"samples: {samples}"))
    return str(path)


def val_robust(study, n: int) -> float:
    return study.trials[n].user_attrs["val_robust_accuracy"][WORST_CASE][0]  # the objective ε: 0.05


def test_best_models_first_with_progress_per_model_and_attack(copy, tmp_path):
    study, config, storage, ckpt = copy
    started, attacks = [], []
    done = rescore(
        study,
        storage,
        config,
        N_TRIALS,
        artifacts=ckpt,
        suite=suite_file(tmp_path, 50),
        on_start=lambda n, i, count: started.append((n, i, count)),
        on_attack=lambda label, i, count: attacks.append((label, i, count)),
    )
    order = [n for n, _, _ in started]
    assert len(order) == N_TRIALS and list(done) == order
    assert [i for _, i, _ in started] == list(range(N_TRIALS)) and {c for _, _, c in started} == {N_TRIALS}
    robust = [val_robust(study, n) for n in order]
    assert robust == sorted(robust, reverse=True), f"not best first: trials {order}, val robust {robust}"
    assert rescore_candidates(study, config, N_TRIALS) == order
    assert attacks == [("FGSM", 0, 1)] * N_TRIALS  # one call per attack of the suite, per model


def test_drop_is_measured_on_the_samples_the_search_attacked(copy, tmp_path):
    study, config, storage, ckpt = copy
    # The search's suite on 200 samples instead of its 50: same attack, seed and first 50 samples,
    # so on those 50 the rescore finds exactly what the search found, while the 200-sample number
    # differs. The old drop (search's 50 vs the rescore's 200) was not zero here.
    done = rescore(study, storage, config, N_TRIALS, artifacts=ckpt, suite=suite_file(tmp_path, 200))
    old_drops = []
    for n, r in done.items():
        search = study.trials[n].user_attrs
        assert r["n_attacked"] == 200 and r["n_compared"] == search["n_attacked"] == 50
        assert r["compared_robust_accuracy"] == pytest.approx(search["robust_accuracy"][WORST_CASE])
        assert r["drop"] == pytest.approx([0.0, 0.0])
        old_drops += [s - v for s, v in zip(search["robust_accuracy"][WORST_CASE], r["robust_accuracy"][WORST_CASE])]
    assert any(abs(d) > 0.01 for d in old_drops), "the test needs a case where 50 vs 200 samples differ"
    table = rescore_table(study)
    assert table["same_samples"].all() and (table["n_compared"] == 50).all()
    assert table["drop"].abs().max() == pytest.approx(0.0)
    assert table["rescored_on_search_samples"].tolist() == pytest.approx(table["search_robust_accuracy"].tolist())


def test_a_rescore_suite_with_fewer_samples_is_raised_to_the_searched_ones(copy, tmp_path):
    study, config, storage, ckpt = copy
    done = rescore(study, storage, config, 1, artifacts=ckpt, suite=suite_file(tmp_path, 20))
    (r,) = done.values()
    assert r["n_attacked"] == r["n_compared"] == 50 and r["drop"] == pytest.approx([0.0, 0.0])


def test_an_interrupted_rescore_continues_with_the_next_model(copy, tmp_path):
    study, config, storage, ckpt = copy
    suite = suite_file(tmp_path, 50)
    order = rescore_candidates(study, config, N_TRIALS)

    def stop_after_first(n, record):
        raise KeyboardInterrupt  # Ctrl-C right after the first model was stored

    with pytest.raises(KeyboardInterrupt):
        rescore(study, storage, config, N_TRIALS, artifacts=ckpt, suite=suite, on_model=stop_after_first)
    reloaded = optuna.load_study(study_name="r", storage=open_storage(storage))
    assert [k for k in reloaded.user_attrs if k.startswith(RESCORE_PREFIX)] == [f"{RESCORE_PREFIX}{order[0]}"]
    started = []
    done = rescore(
        reloaded, storage, config, N_TRIALS, artifacts=ckpt, suite=suite, on_start=lambda n, i, count: started.append(n)
    )
    assert started == list(done) == order[1:], "resumed with the next model, the first not redone"
    assert rescore(reloaded, storage, config, N_TRIALS, artifacts=ckpt, suite=suite) == {}


def test_rescore_command_threads_and_progress(copy, tmp_path):
    _, _, storage, ckpt = copy
    suite = suite_file(tmp_path, 50)
    # TTY_*: rich draws its progress bars as on a terminal, so they show in the captured stderr
    env = worker_env(ROBUSTARCH_THREADS="1", TTY_INTERACTIVE="1", TTY_COMPATIBLE="1", COLUMNS="160")
    args = ("rescore", "--study", "r", "--storage", storage, "--artifacts", str(ckpt), "--suite", suite)
    proc = robustarch(*args, "--top", "1", "--threads", "2", cwd=tmp_path, env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    first = _stored(storage)
    assert len(first) == 1 and next(iter(first.values()))["provenance"]["threads"] == 2
    proc = robustarch(*args, "--top", "2", cwd=tmp_path, env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    added = {n: r for n, r in _stored(storage).items() if n not in first}
    assert added and all(r["provenance"]["threads"] == 1 for r in added.values())  # $ROBUSTARCH_THREADS
    n, err = next(iter(added)), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err)  # without terminal codes
    assert f"rescore: trial {n}" in err and f"trial {n}: FGSM" in err and f"rescored trial {n}" in err
    proc = robustarch(*args, "--threads", "0", cwd=tmp_path, env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--threads 0" in err and "Traceback" not in err


def _stored(storage: str) -> dict[int, dict]:
    study = optuna.load_study(study_name="r", storage=open_storage(storage))
    return {int(k[len(RESCORE_PREFIX) :]): v for k, v in study.user_attrs.items() if k.startswith(RESCORE_PREFIX)}


def test_rescore_in_python_respects_robustarch_threads(copy, tmp_path, monkeypatch):
    import torch

    study, config, storage, ckpt = copy
    monkeypatch.setenv("ROBUSTARCH_THREADS", "1")
    torch.set_num_threads(2)
    try:
        done = rescore(study, storage, config, 1, artifacts=ckpt, suite=suite_file(tmp_path, 50))
        assert next(iter(done.values()))["provenance"]["threads"] == torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)
