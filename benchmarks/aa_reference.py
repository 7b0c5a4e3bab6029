"""The reference for `attack_suite.py`: full-budget AutoAttack (standard version) composed from
torchattacks 3.5.1's attacks, with per-(model, norm, ε, n) results cached in a JSON file.

The composition is AutoAttack's `standard` one at AutoAttack's own budgets (Croce & Hein 2020):
APGD-CE (100 steps), APGD-T (targeted DLR, 9 target classes x 100 steps), FAB-T (multi-targeted, 9
target classes x 100 steps) and Square (5000 queries, p_init 0.8, `resc_schedule=False` as in
AutoAttack's ensemble), each with one restart and seed 0. As AutoAttack does, each attack runs only
on the samples still robust after the previous ones, so the result is the per-sample worst case over
the four. This is NOT torchattacks' `AutoAttack` class: that one runs APGD, APGD-T and FAB with
torchattacks' default of 10 steps (and rescales Square's schedule), a weaker reference.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch
from torch import nn

NORMS = {"linf": "Linf", "l2": "L2"}
REFERENCE_VERSION = "aa-standard-full-v1"  # bump when the composition changes: old cache entries die


def full_autoattack(model: nn.Module, norm: str, eps: float, num_classes: int) -> list[tuple[str, object]]:
    """AutoAttack's `standard` attacks at full budget, in its order."""
    import torchattacks as ta

    tn = NORMS[norm]
    return [
        ("apgd-ce", ta.APGD(model, norm=tn, eps=eps, steps=100, n_restarts=1, loss="ce", seed=0)),
        ("apgd-t", ta.APGDT(model, norm=tn, eps=eps, steps=100, n_restarts=1, n_classes=num_classes, seed=0)),
        (
            "fab-t",
            ta.FAB(
                model, norm=tn, eps=eps, steps=100, n_restarts=1, multi_targeted=True, n_classes=num_classes, seed=0
            ),
        ),
        (
            "square",
            ta.Square(
                model,
                norm=tn,
                eps=eps,
                n_queries=5000,
                n_restarts=1,
                p_init=0.8,
                loss="margin",
                resc_schedule=False,
                seed=0,
            ),
        ),
    ]


def run_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, eps: float, num_classes: int) -> dict:
    """Robust accuracy under the full AutoAttack at one ε: every candidate re-checked by
    `robustarch.attacks.verify` (clipped to [0, 1], misclassified, within ε with our tolerance)."""
    from robustarch.attacks.verify import verify

    for p in model.parameters():
        p.requires_grad_(False)
    start = time.perf_counter()
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    clean = robust.float().mean().item()
    seconds, broken_by = {}, {}
    for name, attack in full_autoattack(model, norm, eps, num_classes):
        t0 = time.perf_counter()
        idx = robust.nonzero().flatten()
        if len(idx):
            adv = attack(x[idx], y[idx])
            with torch.no_grad():
                ok, _, _ = verify(model, x[idx], adv, y[idx], threat_model=norm, bounds=(0.0, 1.0), eps=eps)
            robust[idx[ok]] = False
            broken_by[name] = int(ok.sum())
        seconds[name] = time.perf_counter() - t0
    return {
        "robust_accuracy": robust.float().mean().item(),
        "clean_accuracy": clean,
        "seconds": time.perf_counter() - start,
        "attack_seconds": seconds,
        "broken_by": broken_by,
        "n": len(y),
        "robust": robust.cpu().int().tolist(),
    }


def fingerprint(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> str:
    """A hash of the model's weights and buffers and of the attacked samples."""
    h = hashlib.sha256(REFERENCE_VERSION.encode())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    h.update(y.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class ReferenceCache:
    """One JSON file per (model hash, norm, ε, n) under `root`, so the expensive reference runs once
    while the suites are re-measured."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str, device: str, norm: str, eps: float, n: int) -> Path:
        # the device is part of the key: the cached seconds are what the time ratios divide by
        return self.root / f"ref-{key}-{device}-{norm}-eps{eps:.6g}-n{n}.json"

    def get(
        self, model, x, y, norm: str, eps: float, num_classes: int, *, compute: bool = True, log=print
    ) -> dict | None:
        path = self.path(fingerprint(model, x, y), x.device.type, norm, eps, len(y))
        if path.exists():
            return {**json.loads(path.read_text()), "cached": True}
        if not compute:
            return None
        log(f"  reference: full AutoAttack {norm} ε={eps:.4g} on {len(y)} samples (not cached yet) ...")
        result = run_reference(model, x, y, norm, eps, num_classes)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {**result, "norm": norm, "eps": eps, "device": str(x.device), "torch_threads": torch.get_num_threads()},
                indent=1,
            )
        )
        tmp.replace(path)
        log(
            f"  reference done: robust {result['robust_accuracy']:.4f} in {result['seconds']:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in result['attack_seconds'].items())})"
        )
        return {**result, "cached": False}
