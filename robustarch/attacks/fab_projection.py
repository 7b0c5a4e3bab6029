"""FAB's projections (Croce & Hein 2020, section 3.1): the smallest L∞ or L2 step from a point onto a
hyperplane w·z = b while staying in the box [0, 1]^d, solved exactly per row by sorting + bisection.

Every case is computed for every row and picked with `torch.where`: no host sync (`.any()`, boolean
indexing) inside FAB's step loop; values computed for rows of another case are discarded.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def _bisect(values: torch.Tensor, rhs: torch.Tensor, width: int) -> torch.Tensor:
    """Per row, the last index i in [0, width−1) with values[row, i] < rhs[row] (the columns are
    monotone), found by bisection in ⌈log2 width⌉ halvings."""
    lo = torch.zeros(len(values), device=values.device)
    hi = torch.full_like(lo, width - 1)
    for _ in range(math.ceil(math.log2(width))):
        mid = torch.floor((lo + hi) / 2)
        below = rhs - values.gather(1, mid.long()[:, None])[:, 0] > 0
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return lo.long()


def project_linf(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The step d of least L∞ norm with w·(t + d) = b and t + d in [0, 1] (rows are samples)."""
    w, b = w.clone(), b.clone()
    sign = 2 * ((w * t).sum(1) - b >= 0).to(t) - 1  # orient each hyperplane so the step is "down"
    w, b = w * sign[:, None], b * sign
    toward_low = (w < 0).to(t)  # the box face each coordinate moves towards
    d = (toward_low - t) * (w != 0).to(t)  # the largest move of each coordinate within the box
    p = toward_low - t * (2 * toward_low - 1)  # how far each coordinate can move
    order = torch.argsort(p, dim=1)
    b = b - (w * t).sum(1)
    b0 = (w * d).sum(1)
    rev = order.flip((1,))
    ws = w.gather(1, rev)
    s = torch.cumsum(ws.abs(), dim=1)
    sb = torch.cumsum(-ws * d.gather(1, rev), dim=1) + b0[:, None]
    # rows whose hyperplane is reached before any coordinate saturates, and rows that need the search
    reach_free = b - (sb[:, -1] - s[:, -1] * p.gather(1, order[:, :1])[:, 0]) > 0
    search = (b - b0 > 0) & ~reach_free
    lam_free = ((b - sb[:, -1]) / (-s[:, -1])).clamp_min(0)[:, None]
    d_free = (2 * toward_low - 1) * lam_free
    # the bisected quantity sb[i] − s[i]·p[order[d−1−i]] decreases with i
    k = _bisect(sb - s * p.gather(1, rev), b, w.shape[1])[:, None]
    lam = ((b - sb.gather(1, k)[:, 0]) / (-s.gather(1, k)[:, 0])).clamp_min(0)[:, None]
    d_search = torch.min(lam, d) * toward_low + torch.max(-lam, d) * (1 - toward_low)
    d = torch.where(reach_free[:, None], d_free, torch.where(search[:, None], d_search, d))
    return d * (w != 0).to(t)


def project_l2(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The step d of least L2 norm with w·(t + d) = b and t + d in [0, 1] (rows are samples)."""
    w = w.clone()
    c = (w * t).sum(1) - b
    sign = 2 * (c >= 0).to(t) - 1
    w, c = w * sign[:, None], c * sign
    # r: the step length along −w at which each coordinate hits the box
    r = torch.max(t / w, (t - 1) / w).clamp(min=-1e12, max=1e12)
    r = r.masked_fill(w.abs() < 1e-8, 1e12)
    r = torch.where(r == -1e12, -r, r)
    rs, idx = torch.sort(r, dim=1)
    rs2 = F.pad(rs[:, 1:], (0, 1))
    rs, rs2 = rs.masked_fill(rs == 1e12, 0), rs2.masked_fill(rs2 == 1e12, 0)
    w2 = (w**2).gather(1, idx)
    total = w2.sum(dim=1, keepdim=True)
    free = total - torch.cumsum(w2, dim=1)  # squared weight of coordinates not yet at the box
    d = -(r * w) * (w.abs() > 1e-8).to(t)
    s = torch.cat((-total * rs[:, :1], torch.cumsum((-rs2 + rs) * free, dim=1) - total * rs[:, :1]), 1)
    unbounded = s[:, 0] + c < 0  # the plain projection stays in the box
    unreachable = (d * w).sum(dim=1) + c > 0  # even the box corner does not reach the plane
    search = ~(unbounded | unreachable)
    d_unbounded = -(c / total[:, 0])[:, None] * w
    k = _bisect(-s, c, w.shape[1])[:, None]  # the last i with s[i] + c > 0
    fr = free.gather(1, k)[:, 0]
    alpha = (s.gather(1, k)[:, 0] + c) / fr + rs.gather(1, k)[:, 0]
    alpha = torch.where(fr == 0, torch.zeros_like(alpha), alpha)
    at_box = (alpha[:, None] > r).to(t)
    d_search = d * at_box - alpha[:, None] * w * (1 - at_box)
    d = torch.where(unbounded[:, None], d_unbounded, torch.where(search[:, None], d_search, d))
    return d * (w.abs() > 1e-8).to(t)
