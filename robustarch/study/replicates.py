"""Replicate seeds as a study design: a random share of architectures is trained with R seeds, each
seed its own Optuna trial (enqueued with the architecture's parameters), grouped by `arch_key`.

Seeds derive from (study seed, architecture, replicate), so a resumed or re-queued replicate trains
with the seed it was meant to, and every trial's provenance records it.
"""

from __future__ import annotations

import hashlib
import json

from .storage import _optuna

ENQUEUED_PREFIX = "replicates:"  # study attribute `replicates:<arch_key>`: the trial whose seeds were enqueued
SEED_MODULUS = 2**31 - 1  # torch and NumPy both take it; the split seeds keep their own rule


def arch_key(params: dict) -> str:
    """The architecture (every searched parameter, training knobs included) as a short stable key:
    equal for equal parameters whatever their order, so plain Optuna can group replicates by it."""
    text = json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _uniform(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def derive_seed(study_seed: int, key: str, origin: int, replicate: int) -> int:
    """The training (and attack) seed of replicate `replicate` of the set that trial `origin` started
    for architecture `key`: a hash, so seeds of neighbouring replicates are unrelated, and a
    duplicate proposal (another origin) gets seeds of its own."""
    return _uniform("seed", study_seed, key, origin, replicate) % SEED_MODULUS


def retrain_seed(study_seed: int, key: str, replicate: int) -> int:
    """A fresh seed for `robustarch retrain`: never one the study trained with (another hash domain)."""
    return _uniform("retrain", study_seed, key, replicate) % SEED_MODULUS


def in_share(study_seed: int, key: str, share: float) -> bool:
    """Whether architecture `key` belongs to the reliability subsample: a hash of (study seed, key)
    read as a uniform number below `share` — a random share, the same in every worker and resume."""
    return _uniform("share", study_seed, key) / 2**64 < share


def replicate_of(trial) -> tuple[int, int]:
    """(origin, replicate) of a trial: set on enqueued replicates; a proposal is replicate 0 of its
    own set (kept through a re-queue: Optuna's retry copies the user attributes)."""
    a = trial.user_attrs
    return int(a.get("replicate_of", trial.number)), int(a.get("replicate", 0))


def enqueue_replicates(trial, key: str, replicates: int) -> list[int]:
    """Queue replicates 1 … R − 1 of `trial`'s architecture (same parameters, `arch_key`, `replicate`
    and `replicate_of` user attributes) unless a set was queued for it already (a duplicate proposal
    or a re-queued trial then adds none). Returns the replicate numbers queued."""
    study = trial.study
    attr = f"{ENQUEUED_PREFIX}{key}"
    if attr in study.user_attrs:
        return []
    origin, _ = replicate_of(trial)
    study.set_user_attr(attr, origin)
    for r in range(1, replicates):
        study.enqueue_trial(dict(trial.params), user_attrs={"arch_key": key, "replicate": r, "replicate_of": origin})
    return list(range(1, replicates))


def is_replicate(trial) -> bool:
    """A queued replicate (replicate ≥ 1): it runs beside the study's budget of architectures."""
    return int(trial.user_attrs.get("replicate", 0)) >= 1


def waiting_replicates(study) -> int:
    State = _optuna().trial.TrialState
    return sum(is_replicate(t) for t in study.get_trials(deepcopy=False, states=(State.WAITING,)))


def duplicate_count(trials) -> int:
    """Free replicates: complete proposals (replicate 0) of an architecture proposed before."""
    seen, free = set(), 0
    for t in sorted(trials, key=lambda t: t.number):
        key = t.user_attrs.get("arch_key")
        if key is None or is_replicate(t):
            continue
        free += key in seen
        seen.add(key)
    return free


def expected_replicates(config, n_architectures: int) -> int:
    """About how many queued seeds a study of `n_architectures` adds (the share is drawn at random)."""
    if config.replicates <= 1:
        return 0
    return round(n_architectures * config.replicate_share * (config.replicates - 1))
