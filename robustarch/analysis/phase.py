"""The phase diagram of training: load (label noise, training fraction) against temperature
(training length: max_steps or epochs; else lr / batch size), as tables of cell means.
"""

from __future__ import annotations

import pandas as pd

PHASE_METRICS = (
    ("clean_accuracy", "clean test accuracy"),
    ("generalization_gap", "generalization gap (train − test accuracy)"),
    ("robust_accuracy", "robust accuracy"),
)
LOAD_KNOBS = (
    ("label_noise", "label noise (fraction of training labels randomized)"),
    ("train_fraction", "training fraction (share of the training split used)"),
)
TEMPERATURE_KNOBS = (
    ("max_steps", "training length (optimizer steps)"),
    ("epochs", "training length (epochs)"),
    ("temperature", "lr / batch size (SGD noise scale)"),
)
COLUMNS = [
    "load_knob",
    "temperature_knob",
    "metric",
    "temperature_bin",
    "load_bin",
    "temperature_order",
    "load_order",
    "mean",
    "min",
    "max",
    "n",
]


def _varies(t: pd.DataFrame, col: str) -> bool:
    return col in t and pd.to_numeric(t[col], errors="coerce").nunique() > 1


def phase_axes(t: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The temperature knob (the first that varies: max_steps, epochs, lr/batch) and the load knobs
    that vary."""
    temperature = next((k for k, _ in TEMPERATURE_KNOBS if _varies(t, k)), None)
    return temperature, [k for k, _ in LOAD_KNOBS if _varies(t, k)]


def phase_table(u: pd.DataFrame, grid_map) -> pd.DataFrame:
    """Cell means of each metric in `PHASE_METRICS` over (temperature bin, load bin), one block per
    load knob that varies; empty when no temperature or no load knob varies. `grid_map`: the
    binning of analyzer.grid_map."""
    temperature, loads = phase_axes(u)
    if temperature is None or not loads:
        return pd.DataFrame(columns=COLUMNS)
    frames = []
    for load in loads:
        for metric, _ in PHASE_METRICS:
            if metric not in u or u[metric].notna().sum() == 0:
                continue
            g = grid_map(u, temperature, load, metric, log_x=temperature == "temperature")
            g.columns = ["temperature_bin", "load_bin", "temperature_order", "load_order", "mean", "min", "max", "n"]
            frames.append(g.assign(load_knob=load, temperature_knob=temperature, metric=metric))
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)


def gap(train_accuracy: pd.Series, clean_accuracy: pd.Series) -> pd.Series:
    """Generalization gap: accuracy on the training labels as used minus clean test accuracy."""
    return pd.to_numeric(train_accuracy, errors="coerce") - pd.to_numeric(clean_accuracy, errors="coerce").astype(float)


def label(knob: str) -> str:
    return dict(LOAD_KNOBS + TEMPERATURE_KNOBS + PHASE_METRICS).get(knob, knob)
