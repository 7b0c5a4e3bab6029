"""Acceptance benchmark (issue 17): the `standard` and `autoattack` suites against the FULL-budget
AutoAttack, per model x threat model x ε, on 1-channel digits and 3x32x32 colour images, L∞ and L2.

Models (`bench_models.py`, each trained in seconds on one CPU thread):
- `plain`, `fgsm-rs`: a small 1x8x8 digits CNN, trained normally / with FGSM-RS adversarial training;
- `synth32`: a CIFAR-shaped CNN (3x32x32) on learnable synthetic colour data;
- `digits32`: the same CNN on the digits upsampled to 32x32 and colour-jittered to 3 channels.

Reference (`aa_reference.py`): AutoAttack's standard composition at AutoAttack's own budgets, built
from torchattacks 3.5.1's attacks: APGD-CE and APGD-T (DLR, 9 target classes) at 100 steps, FAB-T
multi-targeted at 100 steps, Square at 5000 queries with `resc_schedule=False`; per-sample worst case.
It is NOT torchattacks' `AutoAttack` class, which runs APGD, APGD-T and FAB at 10 steps.
Each reference result is cached in `--cache` (key: model weights and samples hash x norm x ε x n),
with the seconds it took when it ran, so that the suites can be re-measured cheaply.

ε grids, chosen where the models' robust accuracy is neither ~clean nor ~0 (so they differ):
digits L∞ 0.05/0.1/0.15, L2 0.25/0.5/1.0; synth32 L∞ 2/255, 4/255, L2 0.25/0.5; digits32 (far less
robust per pixel: 1024 inputs per channel) L∞ 1/255, 2/255, L2 0.125/0.25.

Targets per model x norm: `standard` <= reference + 0.5 point at every ε, in <= 0.1x the reference's
time over the grid; `autoattack` <= reference + 0.2 point. Exit status 1 when a target is missed.

    python benchmarks/attack_suite.py [--threads 1] [--samples 200] [--models plain,fgsm-rs,synth32,digits32]
        [--norms linf,l2] [--eps-index 0,1] [--device cpu|cuda] [--reference-only | --cached-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from aa_reference import ReferenceCache  # noqa: E402
from bench_models import MODELS, build  # noqa: E402

HERE = Path(__file__).resolve().parent
GRIDS = {
    "plain": {"linf": (0.05, 0.1, 0.15), "l2": (0.25, 0.5, 1.0)},
    "fgsm-rs": {"linf": (0.05, 0.1, 0.15), "l2": (0.25, 0.5, 1.0)},
    "synth32": {"linf": (2 / 255, 4 / 255), "l2": (0.25, 0.5)},
    "digits32": {"linf": (1 / 255, 2 / 255), "l2": (0.125, 0.25)},
}
PRESETS = {"linf": ("standard", "autoattack"), "l2": ("standard-l2", "autoattack-l2")}


def run_suite(config, grid, n: int, model, x, y, device) -> tuple[list[float], float, object]:
    from robustarch import AttackSuite

    config = dataclasses.replace(config, eps=tuple(grid), samples=n)
    suite = AttackSuite(config, bounds=(0.0, 1.0), device=device)
    start = time.perf_counter()
    result = suite.run(model, x, y, seed=0)
    seconds = time.perf_counter() - start
    return [float(v) for v in result.curve_table()["worst_case"].to_numpy()], seconds, result


def compare(name: str, norm: str, model, x, y, suites, cache: ReferenceCache, args) -> list[dict]:
    """One model x norm: both suites over the grid, the reference at each ε; prints and returns rows."""
    grid = [e for k, e in enumerate(GRIDS[name][norm]) if args.eps_index is None or k in args.eps_index]
    refs = [cache.get(model, x, y, norm, e, 10, compute=not args.cached_only) for e in grid]
    grid, refs = [e for e, r in zip(grid, refs) if r], [r for r in refs if r]
    if args.reference_only or not grid:
        return []
    std_cfg, aa_cfg = suites[norm]
    std, std_s, std_res = run_suite(std_cfg, grid, len(y), model, x, y, args.device)
    print(f"  {name} {norm}: standard {[round(v, 4) for v in std]} in {std_s:.1f} s", flush=True)
    aa, aa_s, aa_res = run_suite(aa_cfg, grid, len(y), model, x, y, args.device)
    ref_s = sum(r["seconds"] for r in refs)
    print(
        f"\n== {name} {norm}: {len(y)} samples, clean {std_res.clean_accuracy:.4f}; "
        f"reference {'cached' if all(r['cached'] for r in refs) else 'run now'}"
    )
    print(f"{'eps':>9} {'standard':>9} {'autoattack':>10} {'full AA':>8} {'std-AA pt':>9} {'aa-AA pt':>9}")
    rows = []
    for k, e in enumerate(grid):
        ref = refs[k]["robust_accuracy"]
        d_std, d_aa = 100 * (std[k] - ref), 100 * (aa[k] - ref)
        rows.append(
            {
                "model": name,
                "norm": norm,
                "eps": e,
                "standard": std[k],
                "autoattack": aa[k],
                "reference": ref,
                "d_std": d_std,
                "d_aa": d_aa,
            }
        )
        print(f"{e:9.5f} {std[k]:9.4f} {aa[k]:10.4f} {ref:8.4f} {d_std:+9.1f} {d_aa:+9.1f}")
    for row in rows:
        row.update(std_ratio=std_s / ref_s, aa_ratio=aa_s / ref_s)
    n = len(y)
    print(
        f"time over the grid ({x.device.type}): standard {std_s:.1f} s ({std_s / ref_s:.3f}x, {n / std_s:.1f} "
        f"samples/s), autoattack {aa_s:.1f} s ({aa_s / ref_s:.3f}x, {n / aa_s:.1f} samples/s), "
        f"full AA {ref_s:.1f} s ({n / ref_s:.2f} samples/s)"
    )
    print(
        "  full AA per attack: "
        + ", ".join(f"{a} {sum(r['attack_seconds'].get(a, 0) for r in refs):.0f} s" for a in refs[0]["attack_seconds"])
    )
    print("  standard per attack: " + ", ".join(f"{k} {v:.1f} s" for k, v in std_res.attack_seconds.items()))
    print("  autoattack per attack: " + ", ".join(f"{k} {v:.1f} s" for k, v in aa_res.attack_seconds.items()))
    return rows


def summary(rows: list[dict]) -> bool:
    """The acceptance table, one line per model x norm; True when every target is met."""
    ok = True
    print(f"\n{'model':>9} {'norm':>5} {'max std-AA':>10} {'std time':>9} {'max aa-AA':>10} {'aa time':>8}  targets")
    for key in dict.fromkeys((r["model"], r["norm"]) for r in rows):
        sel = [r for r in rows if (r["model"], r["norm"]) == key]
        d_std, d_aa = max(r["d_std"] for r in sel), max(r["d_aa"] for r in sel)
        met = d_std <= 0.5 + 1e-6 and sel[0]["std_ratio"] <= 0.1 and d_aa <= 0.2 + 1e-6  # float32 accuracies
        ok &= met
        print(
            f"{key[0]:>9} {key[1]:>5} {d_std:+9.1f}p {sel[0]['std_ratio']:8.3f}x {d_aa:+9.1f}p "
            f"{sel[0]['aa_ratio']:7.3f}x  {'met' if met else 'MISSED'}"
        )
    return ok


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: what a search worker uses; both sides use the same)",
    )
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    ap.add_argument("--norms", default="linf,l2", help="comma-separated subset of linf, l2")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--cache", type=Path, default=HERE / ".cache", help="reference results cache directory")
    ap.add_argument(
        "--eps-index",
        type=lambda v: {int(k) for k in v.split(",")},
        default=None,
        help="only these positions of each model's ε grid, e.g. 1 or 0,2 (default: all)",
    )
    ap.add_argument(
        "--cached-only", action="store_true", help="skip the ε whose reference is not cached (compute no reference)"
    )
    ap.add_argument(
        "--reference-only",
        action="store_true",
        help="only compute (and cache) the missing reference results; run no suite",
    )
    return ap.parse_args()


def main() -> int:
    from robustarch import load_dataset
    from robustarch.attacks.config import load_suite
    from robustarch.runtime import configure_threads

    args = parse_args()
    warnings.filterwarnings("ignore")
    # One thread: the suite's shrinking early-stopped batches parallelize worse than AutoAttack's full
    # batches, so one thread compares the algorithms rather than how well each fills the cores.
    threads = configure_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch threads: {threads} (of {os.cpu_count()} cores), torch {torch.__version__}, device {device}")
    norms = args.norms.split(",")
    suites = {norm: [load_suite(p) for p in PRESETS[norm]] for norm in norms}
    for norm, pair in suites.items():
        for config in pair:
            print(f"{norm}: suite {config.name}: {[a.label for a in config.attacks]}")
    digits = load_dataset("digits", seed=0)
    cache, rows, start = ReferenceCache(args.cache), [], time.perf_counter()
    for name in args.models.split(","):
        model, test = build(name, digits, device=device)
        x, y = test.x[: args.samples].to(device), test.y[: args.samples].to(device)
        for norm in norms:
            rows += compare(name, norm, model, x, y, suites, cache, args)
    print(f"\nbenchmark run time {time.perf_counter() - start:.0f} s")
    if args.reference_only:
        return 0
    ok = summary(rows)
    print(f"all targets met: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
