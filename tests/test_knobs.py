"""The two knobs of Martin & Mahoney (2017) through a real study: load (label noise) and
temperature (training length), and the study recipes that use them."""

from __future__ import annotations

from _tiny_study import tiny_study
from optuna.trial import TrialState

from robustarch.spaces.space import load_space
from robustarch.study import create_or_resume, load_recipe, open_storage, plan, run_study

RANDOM_LABELS_SPACE = """\
name: random-labels
stem:
  width: 32
stages:
  - depth: 2
    width: 32
    stride: 1
    cell: plain
  - depth: 2
    width: 64
    stride: 2
    cell: basic
training:
  lr: 0.05
  batch_size: 64
  weight_decay: 0.0
  select: last
  train_fraction: 0.3
  label_noise: 1.0
  max_steps: 250
"""


def test_at_label_noise_one_a_model_memorizes_its_training_labels_and_learns_nothing(tmp_path):
    """Zhang et al. (2017): a network fits random labels, and then generalizes at chance."""
    study, config, _ = tiny_study(tmp_path, "k", RANDOM_LABELS_SPACE)
    run_study(study, config, n_trials=1)
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))
    a = trial.user_attrs
    assert a["train_config"]["label_noise"] == 1.0 and a["n_train"] == 320
    assert a["train_accuracy"] > 0.6, a["train_accuracy"]  # chance is 0.1: memorized
    # chance, within sampling error of 540 test samples (0.1 ± 3σ, σ ≈ 0.013)
    assert a["clean_accuracy"] < 0.15 and a["val_clean_accuracy"] < 0.16, (a["clean_accuracy"], a["val_clean_accuracy"])


def test_phase_diagram_recipe_grids_label_noise_by_training_length():
    recipe = load_recipe("phase-diagram-digits")
    ((name, config),) = recipe.studies
    assert config.sampler == "grid"
    grid = load_space(config.space).grid()
    assert grid["train_label_noise"][0] == 0.0 and grid["train_label_noise"][-1] == 1.0
    lengths = grid["train_max_steps"]
    assert len(lengths) >= 5 and all(b == 2 * a for a, b in zip(lengths, lengths[1:]))  # log-spaced
    assert recipe.n_trials == len(grid["train_label_noise"]) * len(lengths)


def test_flags_override_a_recipe_and_a_new_dataset_gets_its_own_suite():
    recipe = load_recipe("cubuk2017-digits")
    ((name, config),) = plan(recipe, None, {"sampler": "qmc", "seed": None})
    assert name == "cubuk2017-digits" and config.sampler == "qmc" and config.training == {"epochs": 6}
    ((_, cifar),) = plan(recipe, "mine", {"dataset": "cifar10"})
    assert cifar.suite == "quick-cifar" and cifar.rescore_suite == "autoattack-cifar"
    pair = plan(load_recipe("adversarial-training"), None, {})
    assert [c.training["recipe"] for _, c in pair] == ["standard", "pgd"]


def test_mnist_recipe_runs_end_to_end_on_idx_files(tmp_path):
    """`search --config cubuk2017-mnist` on MNIST-format files (tiny, random pixels), budget cut by flags."""
    import subprocess
    import sys

    import numpy as np
    from test_data import labels, write_idx

    raw = tmp_path / "data" / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels(n))
    env = {**__import__("os").environ, "GIT_PYTHON_REFRESH": "quiet", "ROBUSTARCH_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "robustarch",
            "search",
            "--config",
            "cubuk2017-mnist",
            "--data-dir",
            str(tmp_path / "data"),
            "--n-trials",
            "1",
            "--rescore-top",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "reports" / "cubuk2017-mnist.html").is_file()
    study = create_or_resume(open_storage(str(tmp_path / "robustarch.journal")), "cubuk2017-mnist", None)[0]
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))
    assert trial.user_attrs["n_train"] == 102 and trial.user_attrs["n_attacked"] == 40
