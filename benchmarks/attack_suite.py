"""Acceptance benchmark: the `standard` suite's whole ε-curve versus torchattacks' AutoAttack (standard
version: APGD-CE, APGD-T, FAB-T, Square 5000) run at every ε of the grid, on three digits models:

- `plain`: a small CNN trained normally;
- `fgsm-rs`: the same CNN trained with FGSM-RS adversarial training;
- `logits x1000`: the plain CNN with its logits multiplied by 1000 (saturated softmax: cross-entropy
  gradients vanish, the classic gradient-masking trap that DLR-based attacks see through).

torchattacks 3.5.1's AutoAttack runs APGD, APGD-T and FAB with its own default of 10 steps (AutoAttack's
reference code: 100); Square keeps 5000 queries, which dominates its time.

Target per model: the suite's robust accuracy is never more than 0.5 point above AutoAttack's at any
ε, and its time is at most 0.3x AutoAttack's over the grid. Exit status 1 when a target is missed.

    python benchmarks/attack_suite.py [--threads 1] [--samples 200] [--models plain,fgsm-rs,x1000]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import numpy as np
import torch
from torch import nn

MODELS = ("plain", "fgsm-rs", "x1000")


class ScaledLogits(nn.Module):
    """The same classifier with its logits multiplied by `scale`: identical decisions, saturated softmax."""

    def __init__(self, net: nn.Module, scale: float):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale


def digits_cnn(data, recipe: str = "standard", eps: float | None = None) -> nn.Module:
    from robustarch import ArchSpec, StageSpec, build_model
    from robustarch.search.train import TrainConfig, train_model

    torch.manual_seed(0)
    spec = ArchSpec(in_chans=1, num_classes=10, input_size=8, stem_width=16,
                    stages=(StageSpec(1, 32, 1, "plain"), StageSpec(1, 32, 2, "plain")))
    model = build_model(spec)
    config = TrainConfig(epochs=6, lr=0.1, batch_size=128, recipe=recipe, **({"eps": eps} if eps else {}))
    train_model(model, data, config, device=torch.device("cpu"))
    return model.eval()


def autoattack_curve(model: nn.Module, x, y, grid) -> tuple[list[float], float]:
    """torchattacks' AutoAttack at every ε of the grid, from scratch each time (as it is used)."""
    import torchattacks

    for p in model.parameters():
        p.requires_grad_(False)
    curve, start = [], time.perf_counter()
    for eps in grid:
        attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0)
        adv = attack(x, y)
        # count only points inside the ball, as the suite's verification does
        inside = (adv - x).flatten(1).abs().amax(1) <= eps + 1e-6
        with torch.no_grad():
            broken = (model(adv).argmax(1) != y) & inside
        curve.append(1.0 - broken.float().mean().item())
    return curve, time.perf_counter() - start


def compare(name: str, model: nn.Module, x, y, suite) -> tuple[bool, bool]:
    grid = suite.config.eps
    start = time.perf_counter()
    result = suite.run(model, x, y, seed=0)
    suite_time = time.perf_counter() - start
    aa_curve, aa_time = autoattack_curve(model, x, y, grid)
    worst = result.curve_table()["worst_case"].to_numpy()
    print(f"\n== {name}: {len(y)} samples, clean accuracy {result.clean_accuracy:.4f}")
    print(f"{'eps':>7} {'suite':>8} {'AutoAttack':>11} {'diff (pt)':>10}")
    diffs = []
    for k, e in enumerate(grid):
        diffs.append(100 * (worst[k] - aa_curve[k]))
        print(f"{e:7.3f} {worst[k]:8.4f} {aa_curve[k]:11.4f} {diffs[-1]:+10.1f}")
    ratio = suite_time / aa_time
    print(f"time: suite {suite_time:.1f} s, AutoAttack {aa_time:.1f} s over {len(grid)} ε, ratio {ratio:.3f}")
    print("suite per attack: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.attack_seconds.items()))
    print("sanity: " + ", ".join(f"{k}={'ok' if v['ok'] else 'FAIL'}" for k, v in result.sanity.items()))
    strong, fast = bool(np.max(diffs) <= 0.5), ratio <= 0.3
    print(f"suite <= AutoAttack + 0.5 point at every ε: {strong};  time ratio <= 0.3: {fast}")
    return strong, fast


def main() -> int:
    from robustarch import AttackSuite, load_dataset
    from robustarch.runtime import configure_threads

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: what a search worker uses; both sides use the same)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--suite", default="standard")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # One thread: the suite's shrinking early-stopped batches parallelize worse than AutoAttack's full
    # batches, so one thread compares the algorithms rather than how well each fills the cores.
    threads = configure_threads(args.threads)
    print(f"torch threads: {threads} (of {os.cpu_count()} cores), torch {torch.__version__}")
    data = load_dataset("digits", seed=0)
    x, y = data.test.x[: args.samples], data.test.y[: args.samples]
    suite = AttackSuite.load(args.suite, bounds=data.bounds)
    suite.config = type(suite.config)(**{**suite.config.__dict__, "samples": args.samples})
    print(f"suite {suite.config.name}: {[a.label for a in suite.config.attacks]}, ε grid {list(suite.config.eps)}")
    plain = digits_cnn(data)
    builders = {"plain": lambda: plain, "fgsm-rs": lambda: digits_cnn(data, "fgsm-rs", 0.1),
                "x1000": lambda: ScaledLogits(plain, 1000.0).eval()}
    ok = True
    start = time.perf_counter()
    for name in args.models.split(","):
        strong, fast = compare(name, builders[name](), x, y, suite)
        ok &= strong and fast
    print(f"\nbenchmark run time {time.perf_counter() - start:.0f} s; all targets met: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
