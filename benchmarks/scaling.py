"""Trials per minute with 1 and with 2 worker processes on the same tiny study (target ≥ 1.7×).

    python benchmarks/scaling.py [--postgres URL] [--trials-per-worker 20]

Each worker is a real `robustarch worker` process with one torch thread. The steady-state rate counts
the trials completed after every worker finished its first one (process start-up and first-trial
warm-up excluded); the wall-clock rate includes them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = """\
name: bench-tiny
stem: {width: 8}
stages:
  - {depth: 1, width: [8, 16], stride: 2, cell: [plain, basic]}
training: {epochs: 4, lr: [0.05, 0.1], batch_size: 128}
"""
SUITE = """\
name: bench-tiny
threat_model: linf
eps: [0.05, 0.1]
samples: 100
attacks:
  - attack: FGSM
"""


def run(n_workers: int, n_trials: int, storage: str, folder: Path) -> dict:
    from optuna.trial import TrialState

    from robustarch.study import StudyConfig, create_or_resume
    from robustarch.study.storage import open_storage

    name = f"scaling-{n_workers}-{uuid.uuid4().hex[:6]}"
    config = StudyConfig(space=str(folder / "space.yaml"), suite=str(folder / "suite.yaml"), sampler="random", seed=0)
    study, _ = create_or_resume(open_storage(storage), name, config)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GIT_PYTHON_REFRESH": "quiet",
    }
    import resource

    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "robustarch",
                "worker",
                "--storage",
                storage,
                "--study",
                name,
                "--n-trials",
                str(n_trials),
                "--threads",
                "1",
                "--worker-index",
                str(i),
                "--quiet",
            ],
            env=env,
        )
        for i in range(n_workers)
    ]
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == n_trials, f"{len(done)} complete trials, expected {n_trials}"
    first_per_worker: dict[str, float] = {}
    for t in done:
        first_per_worker.setdefault(t.user_attrs["worker"], t.datetime_complete.timestamp())
        first_per_worker[t.user_attrs["worker"]] = min(
            first_per_worker[t.user_attrs["worker"]], t.datetime_complete.timestamp()
        )
    warm = max(first_per_worker.values())
    ends = sorted(t.datetime_complete.timestamp() for t in done)
    counted = [e for e in ends if e > warm]
    steady = 60 * len(counted) / (ends[-1] - warm) if counted else float("nan")
    compute = [t.user_attrs["train_seconds"] + t.user_attrs["attack_seconds"] for t in done]
    return {
        "workers": n_workers,
        "trials": n_trials,
        "wall_s": wall,
        "per_min_wall": 60 * n_trials / wall,
        "per_min_steady": steady,
        "compute_s": sum(compute) / len(compute),
        "cores": cpu / wall,
    }


def _burn(_=None) -> float:
    start = time.perf_counter()
    x = 0
    for i in range(3_000_000):
        x += i * i
    return time.perf_counter() - start


def free_parallelism() -> float:
    """How much faster two CPU-bound processes finish than one would in sequence, right now: 2.0 on
    an idle machine with 2 cores, less when other work shares the cores."""
    import multiprocessing as mp

    one = _burn()
    with mp.get_context("spawn").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_burn, [0, 1])
        two = time.perf_counter() - start
    return 2 * one / two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials-per-worker", type=int, default=20)
    parser.add_argument("--postgres", help="a PostgreSQL URL instead of a journal file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "space.yaml").write_text(SPACE)
        (folder / "suite.yaml").write_text(SUITE)
        parallel_before = free_parallelism()
        results = []
        for n in (1, 2):
            storage = args.postgres or str(folder / f"scaling-{n}.journal")
            results.append(run(n, n * args.trials_per_worker, storage, folder))
        parallel_after = free_parallelism()
    print(
        f"{'workers':>7} {'trials':>6} {'wall s':>7} {'trials/min (wall)':>18} {'trials/min (steady)':>20} "
        f"{'train+attack s/trial':>21} {'cores busy':>10}"
    )
    for r in results:
        print(
            f"{r['workers']:>7} {r['trials']:>6} {r['wall_s']:>7.1f} {r['per_min_wall']:>18.1f} "
            f"{r['per_min_steady']:>20.1f} {r['compute_s']:>21.2f} {r['cores']:>10.2f}"
        )
    one, two = results
    print(
        f"speed-up with 2 workers: {two['per_min_steady'] / one['per_min_steady']:.2f}x steady, "
        f"{two['per_min_wall'] / one['per_min_wall']:.2f}x wall clock (target >= 1.7x; "
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"free CPU parallelism measured with 2 busy processes: {parallel_before:.2f}x before, "
        f"{parallel_after:.2f}x after (the ceiling for any speed-up; 2.0 on an idle 2-core machine)"
    )


if __name__ == "__main__":
    main()
