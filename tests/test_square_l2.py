"""Square attack on colour images (robustarch/attacks/square.py): the L2 update against a reference
written from AutoAttack's `attack_single_run` (fra31/auto-attack, autoattack/square.py), and the
square-size schedule with and without rescaling to the query budget."""

from __future__ import annotations

import math

import pytest
import torch

from robustarch import UserError, load_suite
from robustarch.attacks import build_attack
from robustarch.attacks.square import _l2_step, p_schedule


def _aa_eta_rectangles(h: int, w: int) -> torch.Tensor:
    """AutoAttack's `eta_rectangles` for L2, line by line."""
    delta = torch.zeros(h, w)
    x_c, y_c = h // 2 + 1, w // 2 + 1
    c0, c1 = x_c - 1, y_c - 1
    for counter in range(max(x_c, y_c)):
        delta[max(c0, 0) : min(c0 + 2 * counter + 1, h), max(0, c1) : min(c1 + 2 * counter + 1, w)] += (
            1.0 / (counter + 1) ** 2
        )
        c0, c1 = c0 - 1, c1 - 1
    return delta / delta.pow(2).sum().sqrt()


def _aa_eta(s: int, gen: torch.Generator) -> torch.Tensor:
    delta = torch.zeros(s, s)
    delta[: s // 2] = _aa_eta_rectangles(s // 2, s)
    delta[s // 2 :] = -_aa_eta_rectangles(s - s // 2, s)
    delta /= delta.pow(2).sum().sqrt()
    return delta.T if torch.rand(1, generator=gen) > 0.5 else delta


def reference_l2_update(xs, best, eps, p, gen, per_channel=True):
    """One L2 Square update, sample by sample and channel by channel, from AutoAttack's formulas:
    norms_window_1, norms_windows (per channel) and the image norm (per sample). Random draws in our
    order: the two windows' corners (every offset allowed, see `_randint`), η's orientation, signs."""
    n, c, h, w = xs.shape
    s = max(int(round(math.sqrt(p * h * w))), 3)
    s = min(s + (s % 2 == 0), h, w)
    vh, vw, vh2, vw2 = (int(torch.randint(0, h - s + 1, (1,), generator=gen)) for _ in range(4))
    eta = _aa_eta(s, gen)
    signs = torch.randint(0, 2, (n, c, 1, 1), generator=gen) * 2 - 1
    delta = best - xs
    out = delta.clone()
    mask = torch.zeros(h, w)
    mask[vh : vh + s, vw : vw + s] = 1.0
    mask[vh2 : vh2 + s, vw2 : vw2 + s] = 1.0
    for i in range(n):
        norm_image = delta[i].pow(2).sum().sqrt()
        for ch in range(c):
            window = delta[i, ch, vh : vh + s, vw : vw + s]
            if per_channel:
                norms_windows = (delta[i, ch] * mask).pow(2).sum().sqrt()
            else:  # the old update: one norm over every channel's windows
                norms_windows = (delta[i] * mask).pow(2).sum().sqrt()
            new = eta * signs[i, ch] + window / (1e-12 + window.pow(2).sum().sqrt())
            budget = (max(eps**2 - norm_image**2, 0.0) / c + norms_windows**2).sqrt()
            new = new / (1e-12 + new.pow(2).sum().sqrt()) * budget
            out[i, ch, vh2 : vh2 + s, vw2 : vw2 + s] = 0.0
            out[i, ch, vh : vh + s, vw : vw + s] = new
    return xs + eps * out / out.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)


@pytest.fixture
def colour_state():
    """Four 3×12×12 images and a perturbation on the ε-sphere that differs between channels, as
    after a few hundred queries (the starting grid has equal norms in every channel)."""
    g = torch.Generator().manual_seed(3)
    xs = 0.25 + 0.5 * torch.rand(4, 3, 12, 12, generator=g)
    delta = torch.randn(4, 3, 12, 12, generator=g) * torch.tensor([1.0, 0.3, 0.05]).reshape(1, 3, 1, 1)
    eps = 0.5
    return xs, xs + eps * delta / delta.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1), eps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l2_update_on_three_channels_matches_autoattack_per_channel(colour_state, seed):
    xs, best, eps = colour_state
    p = 0.1  # 5×5 squares on 12×12
    ours = _l2_step(xs, best, eps, p, torch.Generator().manual_seed(seed))
    ref = reference_l2_update(xs, best, eps, p, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert torch.allclose((ours - xs).flatten(1).norm(dim=1), torch.full((4,), eps), rtol=1e-5)
    # On colour images the per-channel norms matter: the all-channel update is a different point.
    old = reference_l2_update(xs, best, eps, p, torch.Generator().manual_seed(seed), per_channel=False)
    assert (old - ref).abs().max() > 1e-3


def test_l2_update_on_one_channel_is_unchanged_by_the_fix():
    """On 1-channel digits the per-channel and all-channel norms coincide."""
    g = torch.Generator().manual_seed(5)
    xs = torch.rand(3, 1, 8, 8, generator=g)
    best = xs + 0.1 * torch.randn(3, 1, 8, 8, generator=g)
    a = reference_l2_update(xs, best, 1.0, 0.3, torch.Generator().manual_seed(9), per_channel=False)
    torch.testing.assert_close(_l2_step(xs, best, 1.0, 0.3, torch.Generator().manual_seed(9)), a)


def test_schedule_without_rescaling_stops_at_autoattack_smallest_square():
    # AutoAttack's ensemble (resc_schedule=False) at 5000 queries: p_init/128 at the end ...
    assert p_schedule(4999, 5000, 0.8, rescale=False) == pytest.approx(0.8 / 128)
    assert p_schedule(10, 5000, 0.8, rescale=False) == 0.8 and p_schedule(11, 5000, 0.8, rescale=False) == 0.4
    # ... where stretching the 10 000-query schedule to 5000 queries reaches p_init/512
    assert p_schedule(4999, 5000, 0.8, rescale=True) == pytest.approx(0.8 / 512)
    assert p_schedule(6, 5000, 0.8, rescale=True) == 0.4
    # a 10 000-query run is the paper's schedule either way
    assert all(p_schedule(i, 10000, 0.8, True) == p_schedule(i, 10000, 0.8, False) for i in range(0, 10000, 7))


def test_rescale_schedule_is_a_suite_setting(tmp_path):
    path = tmp_path / "s.yaml"
    entry = "threat_model: l2\neps: [0.5]\nattacks:\n  - attack: L2Square\n    queries: 20\n"
    path.write_text(entry + "    rescale_schedule: false\n")
    cfg = load_suite(path)
    attack = build_attack(cfg.attacks[0], cfg.threat_model)
    assert attack.settings["rescale_schedule"] is False
    path.write_text(entry + "    rescale_schedule: 3\n")
    with pytest.raises(UserError, match="rescale_schedule"):
        load_suite(path)
