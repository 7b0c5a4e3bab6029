"""What each trial ran under, read back from its `provenance` user attribute (see
`robustarch.study.provenance`): a table, and the lines of the report's Methods section.
"""

from __future__ import annotations

import pandas as pd

PACKAGES = ("robustarch", "torch", "timm", "foolbox", "optuna", "python")
SEEDS = ("data_split", "sampler", "training", "attack")
# What changes the numbers themselves: when these differ between trials, the report says so.
MUST_MATCH = (*PACKAGES, "device", "suite_config_hash")
PROVENANCE_COLUMNS = [
    "trial",
    *PACKAGES,
    "device",
    "device_type",
    "cuda",
    "threads",
    *(f"seed_{s}" for s in SEEDS),
    "suite_config_hash",
]


def provenance_table(study) -> pd.DataFrame:
    """One row per trial that recorded its provenance: package versions (`robustarch` with its git
    commit when run from a checkout), `device` (GPU or CPU model) and `device_type`, `cuda` (the
    CUDA version torch was built with, on GPU), torch's CPU `threads`, the seeds (`seed_sampler`
    empty where a worker reseeded its sampler) and `suite_config_hash`, the fingerprint of the attack
    suite's resolved configuration. Trials stored before provenance existed are absent."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        p = t.user_attrs.get("provenance")
        if not isinstance(p, dict):
            continue
        versions, seeds = p.get("versions") or {}, p.get("seeds") or {}
        rows.append(
            {
                "trial": t.number,
                **{k: versions.get(k) for k in PACKAGES},
                "device": p.get("device"),
                "device_type": p.get("device_type"),
                "cuda": p.get("cuda"),
                "threads": p.get("threads"),
                **{f"seed_{s}": seeds.get(s) for s in SEEDS},
                "suite_config_hash": p.get("suite_config_hash"),
            }
        )
    return pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)


def _trial_span(trials: list[int]) -> str:
    trials = sorted(trials)
    if len(trials) > 4:
        return f"{len(trials)} trials, {trials[0]}–{trials[-1]}"
    return f"trial{'s' if len(trials) > 1 else ''} {', '.join(map(str, trials))}"


def _values(table: pd.DataFrame, column: str) -> dict[str, list[int]]:
    """Each distinct value of `column` (missing as "unknown") → the trials that had it."""
    groups: dict[str, list[int]] = {}
    for trial, value in zip(table["trial"], table[column]):
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a seed column with a gap (None) reads back as floats
        groups.setdefault("unknown" if pd.isna(value) else str(value), []).append(int(trial))
    return groups


def provenance_lines(table: pd.DataFrame, n_trials: int) -> dict:
    """What Methods says: `environment` (versions, device, threads — each value with its trials
    where they differ), `seeds`, and `mixed`, one sentence naming what differed between trials
    (packages, devices or the suite's configuration), or None when everything that shapes the
    numbers was the same. `missing`: how many of the `n_trials` recorded no provenance."""
    if table.empty:
        return {"environment": None, "seeds": None, "mixed": None, "missing": n_trials}

    def describe(column: str, label: str) -> str:
        groups = _values(table, column)
        if len(groups) == 1:
            return f"{label} {next(iter(groups))}"
        return f"{label} " + " / ".join(f"{v} ({_trial_span(t)})" for v, t in groups.items())

    env = [describe(k, k) for k in PACKAGES if table[k].notna().any()]
    env += [describe("device", "device"), describe("threads", "CPU threads")]
    seeds = [_per_trial_seed(table, s) or describe(f"seed_{s}", s.replace("_", " ")) for s in SEEDS]
    if table["seed_sampler"].isna().any():
        seeds[SEEDS.index("sampler")] += " (unknown: a worker reseeded its sampler from OS entropy)"
    return {
        "environment": "; ".join(env),
        "seeds": "; ".join(seeds),
        "mixed": _mixed(table),
        "missing": n_trials - len(table),
    }


def _per_trial_seed(table: pd.DataFrame, seed: str) -> str | None:
    """ "training: split seed + trial number" when every trial's `seed` follows that rule."""
    base, values = table["seed_data_split"], table[f"seed_{seed}"]
    if seed in ("data_split", "sampler") or values.isna().any() or base.isna().any() or len(set(base)) > 1:
        return None
    if not (values == base + table["trial"]).all():
        return None
    return f"{seed} {int(base.iloc[0])} + trial number"


def _mixed(table: pd.DataFrame) -> str | None:
    """One sentence when what shapes the numbers differed between trials, else None."""
    differ = [k for k in MUST_MATCH if len(_values(table, k)) > 1]
    if not differ:
        return None
    parts = []
    if any(k in PACKAGES for k in differ):
        parts.append("versions of " + ", ".join(k for k in differ if k in PACKAGES))
    if "device" in differ:
        parts.append("devices")
    if "suite_config_hash" in differ:
        hashes = _values(table, "suite_config_hash")
        parts.append(
            "attack-suite configurations (" + " / ".join(f"{h} for {_trial_span(t)}" for h, t in hashes.items()) + ")"
        )
    return (
        f"Not every trial ran under the same setup: they used different {' and '.join(parts)}; "
        "compare their numbers with care."
    )
