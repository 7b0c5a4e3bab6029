"""Provenance: every trial records the versions, device, threads, seeds and the suite's resolved
configuration it ran with; the report's Methods lists them and says when trials differ."""

from __future__ import annotations

import json

import foolbox
import optuna
import pytest
import torch
from _tiny_study import tiny_study

from robustarch._version import __version__
from robustarch.analysis.provenance import provenance_lines, provenance_table
from robustarch.attacks.config import load_suite
from robustarch.report import build_report
from robustarch.study import run_study
from robustarch.study.provenance import config_hash, cpu_model


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """3 trials: two from the first worker (its sampler seeded), one from a worker that reseeded."""
    folder = tmp_path_factory.mktemp("provenance")
    study, config, storage = tiny_study(folder, "p")
    run_study(study, config, n_trials=2, threads=1)
    run_study(study, config, n_trials=3, threads=1, worker_index=1)
    return folder, study, config


def test_each_trial_records_versions_device_threads_seeds_and_suite(searched):
    _, study, config = searched
    suite = json.loads(json.dumps(load_suite(config.suite).to_dict()))  # as stored: tuples become lists
    assert len(study.trials) == 3
    for t in study.trials:
        p = t.user_attrs["provenance"]
        v = p["versions"]
        assert v["robustarch"].startswith(__version__) and v["torch"] == torch.__version__
        assert v["foolbox"] == foolbox.__version__ and v["optuna"] == optuna.__version__ and v["timm"]
        assert p["device_type"] == "cpu" and p["device"] == cpu_model() and p["device"] not in ("", "cpu")
        assert p["threads"] == 1
        assert p["suite_config"] == suite and p["suite_config_hash"] == config_hash(suite)
        sampler = None if t.number == 2 else config.seed  # trial 2: the reseeding worker's
        assert p["seeds"] == {
            "data_split": config.seed,
            "sampler": sampler,
            "training": config.seed + t.number,
            "attack": config.seed + t.number,
        }
    table = provenance_table(study)
    assert table["trial"].tolist() == [0, 1, 2] and table["torch"].eq(torch.__version__).all()
    assert table["seed_sampler"].isna().tolist() == [False, False, True]


def test_methods_lists_the_provenance_of_one_setup(searched):
    _, study, _ = searched
    html = build_report(study, n_boot=20)
    start = html.index('id="provenance"')
    methods = html[start : html.index("</li>", start)]
    for expected in (
        f"torch {torch.__version__}",
        f"foolbox {foolbox.__version__}",
        f"optuna {optuna.__version__}",
        f"device {cpu_model()}",
        "CPU threads 1",
        "training 0 + trial number",
        "attack 0 + trial number",
        "sampler 0 (trials 0, 1) / unknown (trial 2)",
        "reseeded its sampler",
    ):
        assert expected in methods, (expected, methods)
    assert "Not every trial" not in methods


def test_methods_says_when_trials_ran_under_different_setups(tmp_path):
    study, config, _ = tiny_study(tmp_path, "mixed")
    run_study(study, config, n_trials=1, threads=1)
    # The suite was given as a YAML path and edited before the study was resumed: only the
    # per-trial record tells the trials apart (the study attribute `suite_config` holds the latest).
    suite_path = tmp_path / "tiny-suite.yaml"
    suite_path.write_text(suite_path.read_text().replace("samples: 50", "samples: 60"))
    run_study(study, config, n_trials=2, threads=1)
    assert study.trials[1].user_attrs["provenance"]["suite_config"]["samples"] == 60
    lines = provenance_lines(provenance_table(study), len(study.trials))
    assert lines["mixed"].startswith("Not every trial ran under the same setup")
    assert "different attack-suite configurations" in lines["mixed"] and "for trial 1)" in lines["mixed"]
    assert "versions" not in lines["mixed"] and "devices" not in lines["mixed"]
    # A trial recorded by a worker on another machine, with another torch and a GPU.
    first = study.trials[0]
    remote = {
        **first.user_attrs["provenance"],
        "device": "NVIDIA H200",
        "device_type": "cuda",
        "versions": {**first.user_attrs["provenance"]["versions"], "torch": "2.5.1"},
    }
    study.add_trial(
        optuna.trial.create_trial(
            params=first.params,
            distributions=first.distributions,
            value=first.value,
            user_attrs={**first.user_attrs, "provenance": remote},
        )
    )
    html = build_report(study, n_boot=20)
    start = html.index('id="provenance"')
    methods = html[start : html.index("</li>", start)]
    assert "different versions of torch and devices and attack-suite configurations" in methods
    assert f"torch {torch.__version__} (trials 0, 1) / 2.5.1 (trial 2)" in methods
    assert "NVIDIA H200 (trial 2)" in methods


def test_a_study_stored_before_provenance_says_so(tmp_path):
    import shutil
    from pathlib import Path

    from robustarch.study import open_storage

    shutil.copytree(Path(__file__).parent / "data" / "pre-move-study", tmp_path / "old")
    study = optuna.load_study(study_name="pre-move", storage=open_storage(str(tmp_path / "old" / "robustarch.journal")))
    lines = provenance_lines(provenance_table(study), len(study.trials))
    assert lines == {"environment": None, "seeds": None, "mixed": None, "missing": len(study.trials)}
    assert "<b>Provenance</b> (per trial" in build_report(study, n_boot=20)
    assert "not recorded (trials stored before provenance existed)" in build_report(study, n_boot=20)
