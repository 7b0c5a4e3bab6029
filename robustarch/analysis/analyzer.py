"""Statistics on a study's tables: how robustness relates to clean accuracy, size and shape.

`analyze(study)` returns an `Analysis`: every table behind the report (pandas), so each number on
the page can be exported and recomputed. Models with a failed sanity check of severity "invalid"
are kept in the tables but left out of the statistics unless `include_flagged=True` (warnings are
shown, not excluded). The best model and the Pareto front are chosen on validation numbers when the
trials stored them, and quote test numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import WORST_CASE, curve_area, pareto_front
from .architecture import noise_tables
from .attenuation import attenuation_table
from .components import group_keys
from .findings import findings_table, independence_caveat
from .headline import choose_eps
from .pairs import depth_pairs
from .phase import gap, phase_table
from .pooling import slope_summary
from .powerlaw import MAX_ERROR, power_law_table
from .record import RESCORE_COLUMNS, rescore_table, robustness_table, samples_table, trials_table, val_robustness_table
from .stats import N_BOOT, Resampler, correlate, ols, partial_correlation
from .winner import is_shrunken, shrunken_front, winner_trials

MIN_TRIALS_FOR_STATS = 5
AGAINST = ("clean_accuracy", "log10_params", "log10_flops", "depth", "width")
OLS_PREDICTORS = ["clean_accuracy", "log10_params", "depth", "width"]


def correlations(
    table: pd.DataFrame,
    target: str = "robust_accuracy",
    against=AGAINST,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    resampler: Resampler | None = None,
) -> pd.DataFrame:
    """Pearson, Spearman and Kendall correlation of `target` with each column in `against`: one row
    per variable × method with n, coefficient, p-value and bootstrap 95% CI (rows with a missing
    value in the pair are dropped)."""
    rows = []
    resampler = resampler or Resampler(len(table), n_boot, seed)
    for col in against:
        if col not in table:
            continue
        for r in correlate(table[target], table[col], n_boot=n_boot, seed=seed, resampler=resampler):
            rows.append({"target": target, "variable": col, **r})
    return pd.DataFrame(rows, columns=["target", "variable", "method", "n", "coef", "p_value", "ci_low", "ci_high"])


def _label(x: float) -> str:
    """A bin's value as a reader writes it: 3 significant digits (26.7, 0.25), whole numbers whole."""
    return f"{x:.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.3g}"


def _bins(values: pd.Series, max_bins: int, log: bool) -> pd.Series:
    """Group values into at most `max_bins` labelled bins (the values themselves when few)."""
    v = pd.to_numeric(values, errors="coerce")
    uniq = np.sort(v.dropna().unique())
    if len(uniq) <= max_bins:
        return v.map(lambda x: _label(x) if pd.notna(x) else None)
    t = np.log10(v) if log else v
    edges = np.linspace(t.min(), t.max(), max_bins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max_bins - 1)
    back = (lambda e: 10**e) if log else (lambda e: e)
    labels = [f"{back(edges[i]):.3g}–{back(edges[i + 1]):.3g}" for i in range(max_bins)]
    return pd.Series([labels[i] for i in idx], index=v.index)


def grid_map(
    table: pd.DataFrame,
    x: str,
    y: str,
    value: str = "robust_accuracy",
    *,
    max_bins: int = 6,
    log_x: bool = False,
    log_y: bool = False,
) -> pd.DataFrame:
    """Mean, min, max and count of `value` in each (x bin, y bin) cell, bins in ascending order."""
    sub = table[[x, y, value]].dropna()
    cols = [f"{x}_bin", f"{y}_bin", f"{x}_order", f"{y}_order", "mean", "min", "max", "n"]
    if sub.empty:
        return pd.DataFrame(columns=cols)
    bx, by = _bins(sub[x], max_bins, log_x), _bins(sub[y], max_bins, log_y)
    order_x = {b: float(sub.loc[bx == b, x].min()) for b in bx.unique()}
    order_y = {b: float(sub.loc[by == b, y].min()) for b in by.unique()}
    g = (
        sub.assign(**{f"{x}_bin": bx, f"{y}_bin": by})
        .groupby([f"{x}_bin", f"{y}_bin"])[value]
        .agg(["mean", "min", "max", "count"])
        .reset_index()
        .rename(columns={"count": "n"})
    )
    g[f"{x}_order"] = g[f"{x}_bin"].map(order_x)
    g[f"{y}_order"] = g[f"{y}_bin"].map(order_y)
    return g.sort_values([f"{x}_order", f"{y}_order"])[cols].reset_index(drop=True)


def _per_trial(
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    eps,
    eps_grid,
    include_flagged: bool,
    se_curves: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, str]:
    """The trials table plus what the statistics use: log sizes, temperature, robust accuracy at the
    headline ε (test, and validation where stored), the ε-curve's area, the generalization gap, the
    invalid flag, whether the model enters the statistics, and whether it is on the clean-vs-robust
    Pareto front (of the models in the statistics). Returns it and the split the front was chosen on."""
    t = trials.copy()
    for col in ("params", "flops"):
        t[f"log10_{col}"] = np.log10(pd.to_numeric(t[col], errors="coerce").where(lambda v: v > 0))
    t["temperature"] = pd.to_numeric(t["lr"], errors="coerce") / pd.to_numeric(t["batch_size"], errors="coerce")
    t["generalization_gap"] = gap(t["train_accuracy"], t["clean_accuracy"])
    t["flagged"] = t["sanity_invalid"].fillna("").ne("")
    has_curve = t["trial"].isin(curves["trial"])
    t["robust_accuracy"] = np.nan
    t["robust_auc"] = np.nan
    if has_curve.any():
        c = curves.set_index("trial").reindex(t.loc[has_curve, "trial"])
        clean_att = t.loc[has_curve, "attacked_clean_accuracy"].fillna(t.loc[has_curve, "clean_accuracy"])
        t.loc[has_curve, "robust_accuracy"] = c[eps].to_numpy()
        t.loc[has_curve, "robust_auc"] = curve_area(eps_grid, c[eps_grid].to_numpy(float), clean_att.to_numpy(float))
    t["robust_accuracy_se"] = np.nan  # its evaluation SE (analysis.noise), where the robustness table has one
    if se_curves is not None and has_curve.any() and eps in se_curves:
        t.loc[has_curve, "robust_accuracy_se"] = (
            se_curves.set_index("trial").reindex(t.loc[has_curve, "trial"])[eps].to_numpy(float)
        )
    t["val_robust_accuracy"] = pd.to_numeric(t["val_robust_accuracy"], errors="coerce")
    t["in_statistics"] = has_curve & (include_flagged | ~t["flagged"])
    t["pareto"] = False
    used = t[t["in_statistics"]]
    # Choosing the best models on the numbers they are then reported with overstates them (the
    # winner's curse); validation numbers choose, test numbers are quoted.
    on_val = not used.empty and used[["val_accuracy", "val_robust_accuracy"]].notna().all().all()
    x, y = ("val_accuracy", "val_robust_accuracy") if on_val else ("clean_accuracy", "robust_accuracy")
    if not used.empty:
        t.loc[used.index[pareto_front(used[x], used[y])], "pareto"] = True
    return t, "val" if on_val else "test"


def _statistics(
    u: pd.DataFrame, curves: pd.DataFrame, eps, eps_grid, enough: bool, *, n_boot: int, seed: int
) -> dict[str, pd.DataFrame]:
    """Correlations at every ε and of the curve area, partial correlations, OLS — on the models `u`."""
    corr_cols = ["target", "eps", "variable", "method", "n", "coef", "p_value", "ci_low", "ci_high"]
    partial_cols = [
        "target",
        "eps",
        "variable",
        "controlling_for",
        "method",
        "n",
        "coef",
        "p_value",
        "ci_low",
        "ci_high",
    ]
    if not enough:
        return {
            "correlations": pd.DataFrame(columns=corr_cols),
            "partial_correlations": pd.DataFrame(columns=partial_cols),
            "ols_coefficients": pd.DataFrame(),
            "ols_fit": pd.DataFrame(),
        }
    resampler = Resampler(len(u), n_boot, seed)  # one set of resamples for every pair
    frames = []
    for e in eps_grid:
        per_eps = u[["trial", *AGAINST]].merge(curves[["trial", e]].rename(columns={e: "robust_accuracy"}), on="trial")
        frames.append(correlations(per_eps, n_boot=n_boot, seed=seed, resampler=resampler).assign(eps=e))
    frames.append(correlations(u, "robust_auc", n_boot=n_boot, seed=seed, resampler=resampler).assign(eps=np.nan))
    partial = []
    for target in ("robust_accuracy", "robust_auc"):
        for method in ("pearson", "spearman"):
            r = partial_correlation(
                u[target], u["log10_params"], u["clean_accuracy"], method=method, n_boot=n_boot, seed=seed
            )
            partial.append(
                {
                    "target": target,
                    "eps": eps if target == "robust_accuracy" else np.nan,
                    "variable": "log10_params",
                    "controlling_for": "clean_accuracy",
                    **r,
                }
            )
    # a table from elsewhere may lack a predictor altogether (no depth, no width): fit without it
    coef, fit = ols(u, "robust_accuracy", [p for p in OLS_PREDICTORS if u[p].notna().any()])
    coef.insert(0, "target", f"robust_accuracy at eps={eps:g}")
    return {
        "correlations": pd.concat(frames, ignore_index=True)[corr_cols],
        "partial_correlations": pd.DataFrame(partial, columns=partial_cols),
        "ols_coefficients": coef,
        "ols_fit": pd.DataFrame([fit]),
    }


@dataclass
class Analysis:
    """Everything the report shows, as tables. `tables` maps a name to its DataFrame."""

    study_name: str
    eps: float | None
    eps_grid: list[float]
    include_flagged: bool
    n_total: int
    n_complete: int
    n_flagged: int
    n_used: int
    enough: bool
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    fits: dict[str, dict] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    selection_split: str = "test"  # the split the best model and the Pareto front were chosen on
    shrunken: bool = False  # chosen on shrunken architecture estimates (replicates), not raw model numbers
    caveat: str | None = None  # why the models may not be a fair sample of the space
    eps_choice: str = ""  # how the headline ε was chosen (analysis.headline), for the Methods section
    source: str = "study"  # "study" (an Optuna study) or "table" (analyze_table: results from elsewhere)
    notes: list[str] = field(default_factory=list)  # what the input lacks and what is skipped for it

    @property
    def best_trial(self) -> pd.Series | None:
        """The most robust model in the statistics, chosen on `selection_split` (its row quotes test
        numbers)."""
        u = self.used_trials
        col = "val_robust_accuracy" if self.selection_split == "val" else "robust_accuracy"
        if self.shrunken:  # the best seed of the architecture ranked first on its shrunken estimate
            u = u[u["trial"].isin(winner_trials(self.tables["winner"]))]
        return None if u.empty or u[col].isna().all() else u.loc[u[col].idxmax()]

    @property
    def used_trials(self) -> pd.DataFrame:
        """The trials the statistics use (complete, with attack results, unflagged unless included)."""
        t = self.tables["trials"]
        return t[t["in_statistics"]]


def analyze(
    study,
    *,
    eps: float | None = None,
    include_flagged: bool = False,
    n_boot: int = N_BOOT,
    seed: int = 0,
    max_error: float = MAX_ERROR,
) -> Analysis:
    """All of a study's statistics: its stored trials read into tables (analysis.record), then
    `analyze_tables`. `eps`: the ε of the headline robust accuracy (default: analysis.headline)."""
    return analyze_tables(
        trials_table(study),
        robustness_table(study),
        samples_table(study),
        name=study.study_name,
        attrs=dict(study.user_attrs),
        val_robustness=val_robustness_table(study),
        rescore=rescore_table(study),
        eps=eps,
        include_flagged=include_flagged,
        n_boot=n_boot,
        seed=seed,
        max_error=max_error,
    )


def analyze_tables(
    trials: pd.DataFrame,
    robustness: pd.DataFrame,
    samples: pd.DataFrame | None = None,
    *,
    name: str = "table",
    attrs: dict | None = None,
    val_robustness: pd.DataFrame | None = None,
    rescore: pd.DataFrame | None = None,
    eps: float | None = None,
    include_flagged: bool = False,
    n_boot: int = N_BOOT,
    seed: int = 0,
    max_error: float = MAX_ERROR,
    source: str = "study",
    notes: list[str] | None = None,
) -> Analysis:
    """The one analysis behind `analyze(study)` and `analyze_table(models)`: `trials` as
    `record.trials_table`, `robustness` as `record.robustness_table` (worst-case rows are used),
    `samples` as `record.samples_table`, `val_robustness` as `record.val_robustness_table`."""
    from threadpoolctl import threadpool_limits

    # The bootstrap's matrix products are mid-sized: one BLAS thread is as fast on an idle machine
    # and much faster on a busy one (idle BLAS threads spin and steal the cores).
    with threadpool_limits(limits=1, user_api="blas"):
        empty = pd.DataFrame(columns=["trial", "margin", "min_adversarial_eps", "broken", "minimization_min_eps"])
        return _analyze(
            trials,
            robustness,
            empty if samples is None else samples,
            name=name,
            attrs=attrs or {},
            val=val_robustness,
            rescore=rescore,
            eps=eps,
            include_flagged=include_flagged,
            n_boot=n_boot,
            seed=seed,
            max_error=max_error,
            source=source,
            notes=list(notes or []),
        )


def _analyze(
    trials,
    robustness,
    samples,
    *,
    name,
    attrs,
    val,
    rescore,
    eps,
    include_flagged,
    n_boot,
    seed,
    max_error,
    source,
    notes,
) -> Analysis:
    wc = robustness[robustness["attack"] == WORST_CASE]
    eps_grid = sorted(wc["eps"].unique().tolist())
    eps, eps_choice = choose_eps(eps_grid, requested=eps, attrs=attrs, val=val)
    curves = wc.pivot_table(index="trial", columns="eps", values="robust_accuracy").reset_index()
    curves.columns.name = None
    se_curves = None
    if "robust_accuracy_se" in wc and wc["robust_accuracy_se"].notna().any():
        se_curves = wc.pivot_table(index="trial", columns="eps", values="robust_accuracy_se").reset_index()
    trials = trials.copy()
    if val is not None and eps is not None:  # validation robust accuracy at the headline ε
        at = val[np.isclose(val["eps"].to_numpy(float), eps)].set_index("trial")["val_robust_accuracy"]
        trials["val_robust_accuracy"] = trials["trial"].map(at)
    t, selection = _per_trial(trials, curves, eps, eps_grid, include_flagged, se_curves)
    analysed, used = t[t["trial"].isin(curves["trial"])], t[t["in_statistics"]]
    result = Analysis(
        name,
        eps,
        eps_grid,
        include_flagged,
        len(t),
        len(analysed),
        int(analysed["flagged"].sum()),
        len(used),
        len(used) >= MIN_TRIALS_FOR_STATS,
        attrs=attrs,
        selection_split=selection,
        caveat=independence_caveat(attrs, used, source),
        eps_choice=eps_choice,
        source=source,
        notes=notes,
    )

    power = power_law_table(samples, analysed["trial"], max_error=max_error)
    t = t.merge(power[["trial", "slope"]].rename(columns={"slope": "power_law_slope"}), on="trial", how="left")
    result.fits["power_law"] = slope_summary(power[power["trial"].isin(used["trial"])])
    result.tables.update(
        _statistics(t[t["in_statistics"]], curves, eps, eps_grid, result.enough, n_boot=n_boot, seed=seed)
    )
    result.fits["ols"] = result.tables["ols_fit"].iloc[0].to_dict() if not result.tables["ols_fit"].empty else {}
    result.tables["trials"] = t
    result.tables["robustness"] = robustness
    result.tables["power_law"] = power.merge(
        t[["trial", "arch_summary", "flagged", "in_statistics"]], on="trial", how="left"
    )
    result.tables["power_law_summary"] = pd.DataFrame([result.fits["power_law"]])
    result.tables["samples"] = samples
    result.tables["margin_quantiles"] = margin_quantiles(samples)
    result.tables["rescore"] = rescore if rescore is not None else pd.DataFrame(columns=RESCORE_COLUMNS)
    _model_tables(result, t[t["in_statistics"]], n_boot=n_boot, seed=seed)
    return result


def _model_tables(result: Analysis, u: pd.DataFrame, *, n_boot: int, seed: int) -> None:
    """The tables over the models in the statistics `u`: findings, slope correlations, Pareto front,
    depth × width, depth pairs and the phase diagram."""
    power = result.tables["power_law"]
    claims = (result.attrs.get("robustarch_config") or {}).get("claims")  # the recipe's question
    result.tables["findings"] = findings_table(
        u, power[power["in_statistics"].fillna(False).astype(bool)], claims=claims or None, n_boot=n_boot, seed=seed
    )
    result.tables["attenuation"] = attenuation_table(result.tables["findings"])  # raw against corrected
    # Is the slope a property of the architecture? Its correlations with size, shape and accuracy.
    result.tables["slope_correlations"] = (
        correlations(
            u, "power_law_slope", ("clean_accuracy", "log10_params", "depth", "width"), n_boot=n_boot, seed=seed
        )
        if result.enough
        else pd.DataFrame(columns=["target", "variable", "method", "n", "coef", "p_value", "ci_low", "ci_high"])
    )
    t = result.tables["trials"]
    front = ["trial", "arch_summary", "val_accuracy", "val_robust_accuracy", "clean_accuracy", "robust_accuracy"]
    result.tables["pareto_front"] = t.loc[t["pareto"], front].sort_values("clean_accuracy")
    result.tables["depth_width"] = grid_map(u, "depth", "width", log_y=True)
    result.tables["depth_pairs"] = depth_pairs(u)
    tables, notes = noise_tables(
        u, attrs=result.attrs, eps=result.eps, n_boot=n_boot, seed=seed
    )  # analysis.architecture: replicate seeds
    result.tables.update(tables)
    result.notes.extend(notes)
    if is_shrunken(result.tables["winner"]):  # with replicates the front and the best are architectures
        winner = result.tables["winner"]
        result.shrunken = True
        result.tables["pareto_front"] = shrunken_front(winner)
        on_front = group_keys(t).isin(set(winner.loc[winner["pareto"].astype(bool), "arch_key"]))
        t["pareto"] = t["in_statistics"] & on_front
    result.tables["phase_diagram"] = phase_table(
        u.assign(
            train_fraction=lambda d: d["train_fraction"].fillna(1.0), label_noise=lambda d: d["label_noise"].fillna(0.0)
        ),
        grid_map,
    )


def margin_quantiles(samples: pd.DataFrame, n_points: int = 41) -> pd.DataFrame:
    """Each trial's logit-margin distribution as its empirical CDF at `n_points` quantiles."""
    samples = samples[np.isfinite(samples["margin"].to_numpy(float))]  # tables may come without margins
    if samples.empty:
        return pd.DataFrame(columns=["trial", "quantile", "margin"])
    q = np.linspace(0, 1, n_points)
    s = samples.sort_values("trial", kind="stable")
    trials, starts = np.unique(s["trial"].to_numpy(), return_index=True)
    groups = np.split(s["margin"].to_numpy(float), starts[1:])
    return pd.DataFrame(
        {
            "trial": np.repeat(trials, n_points),
            "quantile": np.tile(q, len(trials)),
            "margin": np.concatenate([np.quantile(g, q) for g in groups]),
        }
    )
