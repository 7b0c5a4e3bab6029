"""The matched depth pairs (analysis.pairs): the windowed greedy matching takes the same pairs as
one pass over every candidate pair in order, whatever the round size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from robustarch.analysis import pairs
from robustarch.analysis.claims import DEPTH_CALIPER, PARAM_RATIO


def one_pass(t: pd.DataFrame) -> list[tuple[int, int]]:
    """The definition: every pair i < j, sorted by (gap in log params, clean difference, i, j), taken
    when it qualifies and both models are still free."""
    p, c, d = (t[k].to_numpy(float) for k in ("params", "clean_accuracy", "depth"))
    cand = []
    for i in range(len(t)):
        for j in range(i + 1, len(t)):
            gap, dclean = abs(float(np.log(p[i] / p[j]))), abs(c[i] - c[j])
            if d[i] != d[j] and gap <= math.log(PARAM_RATIO) and dclean <= DEPTH_CALIPER:
                cand.append((gap, dclean, i, j))
    used, out = set(), []
    for _, _, i, j in sorted(cand):
        if i not in used and j not in used:
            used |= {i, j}
            out.append((int(t["trial"].iloc[i]), int(t["trial"].iloc[j])))
    return out


def table(rng, n: int, jitter: bool) -> pd.DataFrame:
    # few distinct parameter counts and clean accuracies: many exact ties, the hard case for the rounds
    params = rng.choice([100.0, 110.0, 120.0, 125.0, 130.0, 160.0, 200.0], n)
    return pd.DataFrame(
        {
            "trial": np.arange(n) + 7,
            "depth": rng.integers(1, 4, n),
            "width": rng.integers(1, 5, n),
            "params": params * (rng.uniform(0.99, 1.01, n) if jitter else 1.0),
            "clean_accuracy": rng.choice([0.5, 0.51, 0.52, 0.53], n),
            "robust_accuracy": rng.random(n),
        }
    )


@pytest.mark.parametrize("round_pairs", [2, 7, 10_000])
def test_windowed_matching_is_the_one_pass_greedy(monkeypatch, round_pairs):
    monkeypatch.setattr(pairs, "ROUND_PAIRS", round_pairs)
    rng = np.random.default_rng(round_pairs)
    for k in range(25):
        t = table(rng, int(rng.integers(2, 60)), jitter=bool(k % 2))
        got = pairs.depth_pairs(t)
        want = one_pass(t)
        assert [set(p) for p in zip(got["deeper_trial"], got["shallower_trial"])] == [set(p) for p in want]
        for r in got.itertuples():
            deep, shallow = t.set_index("trial").loc[r.deeper_trial], t.set_index("trial").loc[r.shallower_trial]
            assert deep["depth"] > shallow["depth"]
            assert r.robust_difference == deep["robust_accuracy"] - shallow["robust_accuracy"]


def test_a_dense_grid_is_matched_without_all_its_pairs():
    # 4 000 models on 40 parameter counts within ×1.25: 8 M candidate pairs, matched in rounds
    rng = np.random.default_rng(0)
    n = 4000
    t = pd.DataFrame(
        {
            "trial": np.arange(n),
            "depth": rng.integers(4, 30, n),
            "width": rng.integers(16, 64, n),
            "params": 1e6 * (1 + rng.integers(0, 40, n) / 200),
            "clean_accuracy": rng.uniform(0.8, 0.82, n),
            "robust_accuracy": rng.random(n),
        }
    )
    got = pairs.depth_pairs(t)
    assert len(got) >= 0.95 * n / 2  # nearly every model finds a partner
    assert not set(got["deeper_trial"]) & set(got["shallower_trial"])
    assert (got["params_ratio"] <= PARAM_RATIO).all() and (got["params_ratio"] >= 1 / PARAM_RATIO).all()
