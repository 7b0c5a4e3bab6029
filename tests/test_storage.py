"""Storages: a robustarch study on PostgreSQL opens in the standard Optuna tools with the same URL.

A real PostgreSQL server on loopback (see `_tiny_study.postgres_url`) and a real one-trial study.
"""
from __future__ import annotations

import importlib.util

import optuna
import pytest
from _tiny_study import postgres_url, unique, write_tiny  # noqa: F401
from optuna.trial import TrialState

from robustarch.errors import UserError
from robustarch.study import StudyConfig, create_or_resume, run_study
from robustarch.study import storage as storage_module
from robustarch.study.storage import open_storage


def test_plain_postgresql_url_loads_in_optuna(tmp_path, postgres_url):  # noqa: F811
    """The URL the user gives robustarch is the one `optuna.load_study` (and optuna-dashboard,
    which opens storages the same way) takes: psycopg 3 is SQLAlchemy's driver for it."""
    assert postgres_url.startswith("postgresql://")
    space, suite = write_tiny(tmp_path)
    name = unique("plain-url")
    config = StudyConfig(space=str(space), suite=str(suite), sampler="random", seed=0)
    study, config = create_or_resume(open_storage(postgres_url), name, config)
    run_study(study, config, n_trials=1, threads=1)
    loaded = optuna.load_study(study_name=name, storage=postgres_url)  # no driver named in the URL
    complete = loaded.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 1
    assert complete[0].user_attrs["arch_summary"] == study.get_trials()[0].user_attrs["arch_summary"]
    assert 0.0 <= complete[0].user_attrs["clean_accuracy"] <= 1.0
    assert loaded.user_attrs["n_trials"] == 1


def test_postgres_driver_choice(monkeypatch):
    """psycopg 3 keeps the plain URL; psycopg2 alone is named explicitly; neither is a user error."""
    assert importlib.util.find_spec("psycopg") is not None, "the dev extra installs psycopg 3"
    assert storage_module._postgres_driver("postgresql://u@h/db") == "postgresql://u@h/db"
    assert storage_module._postgres_driver("postgres://u@h/db") == "postgresql://u@h/db"
    real = importlib.util.find_spec

    def only(*present):
        # a driver is "installed" when named here, whatever this environment really has
        return lambda name, *a: (object() if name in present else None) if name in ("psycopg", "psycopg2") \
            else real(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", only("psycopg2"))
    assert storage_module._postgres_driver("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    monkeypatch.setattr(importlib.util, "find_spec", only())
    with pytest.raises(UserError, match="robustarch\\[postgres\\]"):
        storage_module._postgres_driver("postgresql://u@h/db")
