"""The comparison page's figures: the architecture pairs, two studies' trials and ε-curves on shared axes."""

from __future__ import annotations

import pandas as pd

from ..analysis.analyzer import Analysis
from .figures import trial_tip
from .svgplot import PALETTE, Axes, Plot


def paired_plot(a: Analysis, b: Analysis, pairs: pd.DataFrame) -> Plot | None:
    """Each architecture trained in both studies: its robust accuracy in A (x) against B (y); above
    the diagonal B is more robust."""
    p = pairs.dropna(subset=["robust_accuracy_a", "robust_accuracy_b"])
    if p.empty:
        return None
    plot = Plot(
        f"Robust accuracy at ε={a.eps:g} of each architecture: A vs B",
        "robust accuracy in A",
        "robust accuracy in B",
        plot_id="compare-pairs",
    )
    hi = max(0.05, float(p[["robust_accuracy_a", "robust_accuracy_b"]].max().max()))
    ax = Axes(plot, (0, hi), (0, hi))
    ax.line([0, hi], [0, hi], "B = A", color="#888888", dash="4 3", width=1)
    for r in p.to_dict("records"):
        ax.point(
            r["robust_accuracy_a"],
            r["robust_accuracy_b"],
            f"{r['arch_summary']} (trial {int(r['trial_a'])} in A, {int(r['trial_b'])} in B): robust "
            f"{r['robust_accuracy_a']:.3f} → {r['robust_accuracy_b']:.3f}, clean {r['clean_accuracy_a']:.3f} → "
            f"{r['clean_accuracy_b']:.3f}",
            color=PALETTE[0],
        )
    plot.legend += [(PALETTE[0], "architecture in both"), ("#888888", "B = A")]
    plot.caption = (
        f"One point per architecture trained in both A ({a.study_name}) and B ({b.study_name}); above the "
        "dashed diagonal, B is more robust than A."
    )
    return plot


def compare_plots(a: Analysis, b: Analysis, pairs: pd.DataFrame | None = None) -> list[Plot]:
    plots = []
    paired = paired_plot(a, b, pairs) if pairs is not None else None
    if paired is not None:
        plots.append(paired)
    ta, tb = (x.tables["trials"][x.tables["trials"]["robust_accuracy"].notna()] for x in (a, b))
    if not ta.empty or not tb.empty:
        both = pd.concat([ta, tb])
        p = Plot(
            f"Robust accuracy at ε={a.eps:g} vs clean accuracy",
            "clean accuracy",
            f"robust accuracy at ε={a.eps:g}",
            plot_id="compare-scatter",
        )
        ax = Axes(
            p,
            (both["clean_accuracy"].min(), both["clean_accuracy"].max()),
            (0, max(0.05, float(both["robust_accuracy"].max()))),
        )
        for color, name, t in ((PALETTE[0], a.study_name, ta), (PALETTE[1], b.study_name, tb)):
            for r in t.to_dict("records"):
                ax.point(
                    r["clean_accuracy"],
                    r["robust_accuracy"],
                    f"{name} · " + trial_tip(r),
                    cls="flagged" if r["flagged"] else "",
                    color=color,
                )
            p.legend.append((color, name))
        plots.append(p)
    p = Plot(
        "Median worst-case robust accuracy over ε (band: quartiles)", "ε", "robust accuracy", plot_id="compare-curves"
    )
    grid = sorted(set(a.eps_grid) | set(b.eps_grid))
    if grid:
        ax = Axes(p, (0, max(grid)), (0, 1))
        for color, x in ((PALETTE[0], a), (PALETTE[1], b)):
            rob = x.tables["robustness"]
            rob = rob[(rob["attack"] == "worst_case") & rob["trial"].isin(x.used_trials["trial"])]
            if rob.empty:
                continue
            g = rob.groupby("eps")["robust_accuracy"]
            q = pd.DataFrame({"q1": g.quantile(0.25), "med": g.median(), "q3": g.quantile(0.75)})
            for col, width, dash in (("q1", 1, "3 3"), ("med", 2.5, ""), ("q3", 1, "3 3")):
                ax.line(
                    q.index,
                    q[col],
                    f"{x.study_name}: {col} of robust accuracy over ε — "
                    + ", ".join(f"ε={e:g}: {v:.3f}" for e, v in q[col].items()),
                    color=color,
                    width=width,
                    dash=dash,
                )
            p.legend.append((color, x.study_name))
        plots.append(p)
    return plots
