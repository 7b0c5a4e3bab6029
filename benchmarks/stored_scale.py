"""Benchmark: stored studies at scale — a journal file and a PostgreSQL study (a server started here
on 127.0.0.1 in a temp folder, as .ci/run does) of 5 000 complete trials, each with its per-sample
table, created through Optuna's own API (`tests/_studies.make_study`: the user attributes a real trial
stores), not trained; then opened, reported and exported, each step timed.

    python benchmarks/stored_scale.py [--trials 5000] [--samples 200] [--skip-postgres]

Target (issue 26): each reported in ≤ 60 s. Prints what reading the trials' user attributes costs
(one `get_trials`) beside the whole report, and which part of the analysis is the power law.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def timed(label: str, fn, *args, **kwargs):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    print(f"  {label:50s} {time.perf_counter() - t:8.1f} s wall, {time.process_time() - c:7.1f} s CPU", flush=True)
    return out


def cli(*args: str) -> tuple[float, str]:
    """`robustarch ARGS` in a fresh process: wall seconds and peak RSS (/usr/bin/time)."""
    t = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "RSS_KIB %M %U %S", sys.executable, "-m", "robustarch", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    wall = time.perf_counter() - t
    rss = [line.split()[1:] for line in proc.stderr.splitlines() if line.startswith("RSS_KIB")]
    if proc.returncode:
        print(proc.stderr[-2000:])
    if not rss:
        return wall, "?"
    return wall, f"{float(rss[-1][1]) + float(rss[-1][2]):.1f} s CPU, peak RSS {int(rss[-1][0]) / 2**20:.2f} GiB"


def bench(url: str, label: str, n_trials: int, n_samples: int, folder: Path) -> None:
    import optuna
    from _studies import make_study

    from robustarch.analysis.record import samples_table, snapshot, trials_table
    from robustarch.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{label}: {n_trials} trials × {n_samples} samples ({url.split('@')[-1]})", flush=True)
    timed(
        "create through Optuna (add_trial)",
        make_study,
        n_trials,
        name="scale",
        n_samples=n_samples,
        n_failed=0,
        n_flagged=5,
        search_training=True,
        storage=open_storage(url),
    )
    study = timed(
        "open (open_storage + optuna.load_study)",
        lambda: optuna.load_study(study_name="scale", storage=open_storage(url)),
    )
    trials = timed("read every trial's user attributes (get_trials)", study.get_trials, deepcopy=False)
    assert len(trials) == n_trials
    snap = snapshot(study)
    timed("tidy tables from the read trials (trials, samples)", lambda: (trials_table(snap), samples_table(snap)))
    wall, rss = cli("report", "--study", "scale", "--storage", url, "--out", str(folder / f"{label}.html"))
    size = (folder / f"{label}.html").stat().st_size / 2**20
    print(
        f"  {'robustarch report (whole command)':50s} {wall:8.1f} s wall, {rss}, page {size:.2f} MiB "
        f"— target ≤ 60 s: {'met' if wall <= 60 else 'NOT met'}",
        flush=True,
    )
    wall, rss = cli(
        "export",
        "--study",
        "scale",
        "--storage",
        url,
        "--table",
        "samples",
        "--out",
        str(folder / f"{label}-samples.parquet"),
    )
    print(f"  {'robustarch export --table samples':50s} {wall:8.1f} s wall, {rss}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-journal", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="robustarch-stored-"))
    if not args.skip_journal:
        bench(str(folder / "scale.journal"), "journal", args.trials, args.samples, folder)
    if not args.skip_postgres:
        from _postgres import throwaway_postgres, unavailable

        if unavailable():
            raise SystemExit(unavailable())
        with throwaway_postgres("bench") as url:
            bench(url, "postgresql", args.trials, args.samples, folder)


if __name__ == "__main__":
    main()
