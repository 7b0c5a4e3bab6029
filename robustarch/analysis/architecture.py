"""Findings at the architecture level: the variance components of robust (and clean) accuracy, the
shrunken winner, and cross-seed correlations (clean accuracy from one seed, robust from another, so
that the errors of one trained model do not correlate with themselves).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .components import group_keys, model_se, variance_components
from .retrained import COMPARISON_COLUMNS, RETRAIN_COLUMNS, retrain_comparison, retrain_rows
from .stats import correlate
from .winner import WINNER_COLUMNS, winner_table

NO_REPLICATES = (
    "One seed per architecture: no variance components, no shrunken winner — seed noise cannot be "
    "told from architecture without replicates (run with --replicates 3 --replicate-share 0.25). "
    "Parameters and FLOPs have reliability 1 (they do not depend on the seed or the test sample)."
)
CROSS_COLUMNS = ["pairing", "method", "n", "coef", "p_value", "ci_low", "ci_high"]


def components_table(u: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Components of robust and clean accuracy (test) over the architectures of `u`; empty without replicates."""
    keys = group_keys(u).to_numpy()
    frames = []
    for number in ("robust_accuracy", "clean_accuracy"):
        if number not in u:
            continue
        c = variance_components(
            pd.to_numeric(u[number], errors="coerce").to_numpy(float),
            keys,
            model_se(u, number).to_numpy(float),
            n_boot=n_boot,
            seed=seed,
        )
        if c is not None:
            frames.append(c.table(number))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def cross_seed(u: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Spearman ρ of clean and robust accuracy over replicated architectures: same seed (both from
    the first seed) and cross-seed (clean from the first seed, robust from the second)."""
    m = u.assign(arch_key=group_keys(u)).sort_values(["arch_key", "trial"])
    m = m[m.groupby("arch_key")["trial"].transform("size") >= 2]
    if m["arch_key"].nunique() < 3:
        return pd.DataFrame(columns=CROSS_COLUMNS)
    first = m.groupby("arch_key").nth(0).set_index("arch_key")
    second = m.groupby("arch_key").nth(1).set_index("arch_key").reindex(first.index)
    rows = []
    for pairing, robust in (("same seed", first["robust_accuracy"]), ("cross-seed", second["robust_accuracy"])):
        r = correlate(
            robust.astype(float), first["clean_accuracy"].astype(float), methods=("spearman",), n_boot=n_boot, seed=seed
        )[0]
        rows.append({"pairing": pairing, **{k: r[k] for k in CROSS_COLUMNS if k in r and k != "pairing"}})
    return pd.DataFrame(rows, columns=CROSS_COLUMNS)


def noise_tables(
    u: pd.DataFrame, *, attrs: dict | None = None, eps: float | None = None, n_boot: int, seed: int
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The architecture-level tables of the models in the statistics `u` (and of `robustarch
    retrain`'s records in the study attributes `attrs`), and the notes the page prints (why there are
    no components, for a study without replicates)."""
    u = u.assign(robust_accuracy_se=model_se(u, "robust_accuracy"), clean_accuracy_se=model_se(u, "clean_accuracy"))
    tables = {
        "variance_components": pd.DataFrame(),
        "winner": pd.DataFrame(columns=WINNER_COLUMNS),
        "cross_seed": pd.DataFrame(columns=CROSS_COLUMNS),
        "retrain": pd.DataFrame(columns=COMPARISON_COLUMNS),
        "retrain_seeds": pd.DataFrame(columns=RETRAIN_COLUMNS),
    }
    if u.empty:
        return {**tables, "noise_summary": pd.DataFrame({"sentence": []})}, []
    replicated = group_keys(u).nunique() < len(u)
    if replicated:
        tables["variance_components"] = components_table(u, n_boot=n_boot, seed=seed)
        tables["cross_seed"] = cross_seed(u, n_boot=n_boot, seed=seed)
    winner, comps = winner_table(u, seed=seed)
    tables["winner"] = winner
    rows = retrain_rows(attrs or {}, eps)
    within = comps["test"].estimate["msw"] if comps["test"] is not None else np.nan
    tables["retrain"], tables["retrain_seeds"] = retrain_comparison(winner, rows, within), rows
    sentence = decomposition_sentence(tables["variance_components"])
    free = free_replicates(u)
    if sentence and free:
        sentence += (
            f" {free} of the seeds are free replicates: the sampler proposed an architecture it had proposed before."
        )
    tables["noise_summary"] = pd.DataFrame({"sentence": [sentence or NO_REPLICATES]})
    return tables, [] if replicated else [NO_REPLICATES]


def decomposition_sentence(table: pd.DataFrame) -> str | None:
    """One sentence: how much of robust accuracy is architecture, training seed and finite test sample."""
    if table is None or table.empty:
        return None
    t = table[table["number"] == "robust_accuracy"].set_index("quantity")
    if t.empty:
        return None

    def pct(q):
        r = t.loc[q]
        return f"{r['estimate']:.0%} (95% CI {r['ci_low']:.0%}–{r['ci_high']:.0%})"

    n = t.iloc[0]
    return (
        f"Of the variance in robust accuracy across the {int(n['n_models'])} trained models, {pct('share_arch')} "
        f"is architecture, {pct('share_seed')} training seed and {pct('share_eval')} the finite test sample "
        f"({int(n['n_arch'])} architectures, {int(n['n_replicated'])} with {n['k']:g} seeds)."
    )


def free_replicates(u: pd.DataFrame) -> int:
    """Proposals (replicate 0) of an architecture proposed before: on a discrete space a free seed."""
    if "replicate" not in u or "arch_key" not in u:
        return 0
    proposals = u[pd.to_numeric(u["replicate"], errors="coerce") == 0]
    return int(len(proposals) - proposals["arch_key"].nunique())
