"""Benchmark: report a synthetic 500-trial study (no training) and print seconds and megabytes.

Target (issue 6): under 10 s and under 10 MB. Wall time depends on machine load, so CPU time of
this process is printed too.

    python benchmarks/report.py [--trials 500] [--samples 200] [--out reports/bench.html]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic study builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--samples", type=int, default=200, help="attacked test samples per model")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import optuna
    from _studies import make_study

    from robustarch.analysis import analyze
    from robustarch.report import build_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = make_study(
        args.trials, name=f"bench-{args.trials}", n_samples=args.samples, n_flagged=10, search_training=True
    )
    out = args.out or Path(tempfile.mkdtemp()) / "bench.html"
    # What `write_report` does, timed by stage: statistics, then figures + HTML + writing.
    wall, cpu = time.perf_counter(), time.process_time()
    analysis = analyze(study)
    wall_stats = time.perf_counter() - wall
    out.write_text(build_report(study, analysis=analysis), encoding="utf-8")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    path = out
    mb = path.stat().st_size / 1e6
    ok = wall < 10 and mb < 10
    print(
        f"report of {args.trials} trials × {args.samples} samples: {wall:.2f} s wall, {cpu:.2f} s CPU, "
        f"{mb:.2f} MB ({path}); statistics {wall_stats:.2f} s, page {wall - wall_stats:.2f} s — target < 10 s and < 10 MB: {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
