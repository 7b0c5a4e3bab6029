"""Matched pairs of models of different depth (the `deeper_more_robust` claim): greedy, closest
first, each model in one pair at most, in time and memory linear in the models for dense grids."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .claims import DEPTH_CALIPER, PARAM_RATIO

PAIR_COLUMNS = [
    "deeper_trial",
    "shallower_trial",
    "deeper_depth",
    "shallower_depth",
    "deeper_width",
    "shallower_width",
    "params_ratio",
    "clean_difference",
    "thinner",
    "robust_difference",
]
# candidate pairs looked at per round of the greedy matching: bounds the memory (a dense grid such
# as NARes's 15 625 models has 41 M pairs within ×1.25 in parameters) and, since a round only looks
# at the models still unmatched, the work too
ROUND_PAIRS = 250_000
SLACK = 1e-9  # log-parameter rounding: windows are widened by this, then cut on the exact gap


def _near_pairs(x: np.ndarray, width: float, low: float = -math.inf) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j (indices into x) with low < |x_i − x_j| ≤ width (up to SLACK), found on
    sorted x: work and memory grow with the number of such pairs, not with n²."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    stop = np.searchsorted(xs, xs + width + SLACK, side="right")
    start = np.arange(len(xs)) + 1 if low < 0 else np.searchsorted(xs, xs + low - SLACK, side="right")
    start = np.maximum(start, np.arange(len(xs)) + 1)
    counts = np.maximum(stop - start, 0)
    first = np.repeat(np.arange(len(xs)), counts)
    second = np.repeat(start, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    a, b = order[first], order[second]
    return np.minimum(a, b), np.maximum(a, b)


def _pair_count(xs: np.ndarray, low: float, high: float) -> int:
    """How many pairs of sorted `xs` differ by more than `low` and at most `high`."""
    idx = np.arange(len(xs)) + 1
    stop = np.searchsorted(xs, xs + high, side="right")
    start = idx if low < 0 else np.maximum(np.searchsorted(xs, xs + low, side="right"), idx)
    return int(np.maximum(stop - start, 0).sum())


def _next_high(xs: np.ndarray, low: float, top: float) -> float:
    """A gap ≤ `top` whose window (low, gap] of sorted `xs` holds between half and all of
    ROUND_PAIRS pairs (bisected), or just the next distinct difference where that alone holds more."""
    if _pair_count(xs, low, top) <= ROUND_PAIRS:
        return top
    floor = max(low, 0.0)
    lo, hi = floor, top
    for _ in range(60):
        mid = (lo + hi) / 2
        count = _pair_count(xs, low, mid)
        if count <= ROUND_PAIRS:
            lo = mid
            if count >= ROUND_PAIRS // 2:
                break
        else:
            hi = mid
    if lo > floor:
        return lo
    after = np.searchsorted(xs, xs + low, side="right") if low >= 0 else np.arange(len(xs)) + 1
    has = after < len(xs)
    step = float((xs[after[has]] - xs[has]).min())
    return min(top, max(step, float(np.nextafter(low, np.inf)) if low >= 0 else step))


def _match(t: np.ndarray, ratio: float, caliper: float) -> list[tuple[int, int]]:
    """The greedy matching: candidate pairs (params within `ratio`, clean accuracy within `caliper`,
    different depth) taken in the order (gap in log params, clean difference, first index, second
    index) when both models are still free. Rounds cut the gap axis into windows, each enumerated on
    the still-free models only; the accepted pairs are those of one pass over every pair."""
    top = math.log(ratio)
    logp = np.log(t[:, 3])
    free = np.ones(len(t), bool)
    pairs: list[tuple[int, int]] = []
    low = -math.inf
    while free.sum() >= 2 and low < top:
        idx = np.flatnonzero(free)
        high = _next_high(np.sort(logp[idx]), low, top)
        i, j = (idx[k] for k in _near_pairs(logp[idx], high, low))
        gap = np.abs(np.log(t[i, 3] / t[j, 3]))
        dclean = np.abs(t[i, 4] - t[j, 4])
        ok = (t[i, 1] != t[j, 1]) & (gap > low) & (gap <= min(high, top)) & (dclean <= caliper)
        order = np.lexsort((j[ok], i[ok], dclean[ok], gap[ok]))  # ties: the order of np.triu_indices
        used = ~free  # a plain list lookup: numpy scalars in a Python loop cost ~10× more
        flags = used.tolist()
        for a, b in zip(i[ok][order].tolist(), j[ok][order].tolist()):
            if flags[a] or flags[b]:
                continue
            flags[a] = flags[b] = True
            pairs.append((a, b))
        free = ~np.asarray(flags)
        low = high
    return pairs


def depth_pairs(u: pd.DataFrame, ratio: float = PARAM_RATIO, caliper: float = DEPTH_CALIPER) -> pd.DataFrame:
    """Disjoint pairs of models of different depth whose parameter counts differ by at most `ratio`
    and clean accuracies by at most `caliper`, closest first (each model in one pair at most, so the
    pairs are independent): the deeper one's robust accuracy minus the shallower one's, and whether
    the deeper one is also the thinner."""
    t = u[["trial", "depth", "width", "params", "clean_accuracy", "robust_accuracy"]].dropna().to_numpy(float)
    if len(t) < 2:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    rows = []
    for a, b in _match(t, ratio, caliper):
        deep, shallow = (t[a], t[b]) if t[a, 1] > t[b, 1] else (t[b], t[a])
        rows.append(
            [
                deep[0],
                shallow[0],
                deep[1],
                shallow[1],
                deep[2],
                shallow[2],
                deep[3] / shallow[3],
                deep[4] - shallow[4],
                bool(deep[2] < shallow[2]),
                deep[5] - shallow[5],
            ]
        )
    out = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    return out.astype({"deeper_trial": int, "shallower_trial": int}) if rows else out
