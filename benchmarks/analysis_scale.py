"""Benchmark: `robustarch analyze` at the scale of the field — wall time, peak RSS and page size per
number of models, the growth exponent in models, a NARes-shaped table and models × samples.

Each case runs `robustarch analyze` in its own subprocess (peak RSS from getrusage of the children),
so several code trees can be compared in one run (`--code BEFORE_TREE --code .`):

    python benchmarks/analysis_scale.py                      # this tree, every case
    python benchmarks/analysis_scale.py --code /tmp/base --code .   # before and after
    python benchmarks/analysis_scale.py --cases nares,m1000 --stored  # + 5 000-trial stored studies

Targets (issue 26, 2 idle cores): NARes 15 625 models ≤ 20 s, ≤ 1 GiB, page ≤ 5 MiB; 3 000 models ×
500 samples ≤ 60 s, ≤ 1.5 GiB, page ≤ 6 MiB; growth exponent over 1k / 3k / 10k models ≤ 1.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CASES = {"m1000": (1000, 0), "m3000": (3000, 0), "m10000": (10000, 0), "nares": (15625, 0), "m3000x500": (3000, 500)}
TARGETS = {"nares": (20, 1.0, 5), "m3000x500": (60, 1.5, 6)}  # seconds, GiB, MiB


def make_inputs(folder: Path, cases: list[str]) -> dict[str, tuple[Path, Path | None]]:
    from scale_tables import models_and_samples, nares_raw, prepare_nares

    inputs = {}
    for case in cases:
        n, samples = CASES[case]
        models_path, samples_path = folder / f"{case}.csv", None
        if case == "nares":
            prepare_nares(nares_raw()).to_csv(models_path, index=False)
        else:
            m, s = models_and_samples(n, max(samples, 1))
            m.to_csv(models_path, index=False)
            if samples:
                samples_path = folder / f"{case}-samples.parquet"
                s.to_parquet(samples_path, index=False)
        inputs[case] = (models_path, samples_path)
    return inputs


def run_case(code: Path, models: Path, samples: Path | None, out: Path, timeout: float) -> dict:
    """One `robustarch analyze` in a fresh interpreter importing `code`, under /usr/bin/time: its wall
    time, peak RSS (the child's own, not the largest child so far) and page size."""
    cmd = [
        "/usr/bin/time",
        "-f",
        "RSS_KIB %M %U %S",
        sys.executable,
        "-m",
        "robustarch",
        "analyze",
        str(models),
        "--out",
        str(out),
    ]
    if samples is not None:
        cmd += ["--samples", str(samples)]
    env = {**os.environ, "PYTHONPATH": str(code.resolve()), "GIT_PYTHON_REFRESH": "quiet"}
    t = time.perf_counter()
    # run inside the tree (`python -m` puts the working folder first on sys.path), in its own session:
    # on a timeout the whole group goes, not only /usr/bin/time (its Python child, orphaned, used to
    # run on and slow every later case)
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=code.resolve(),
        start_new_session=True,
    )
    try:
        stderr = proc.communicate(timeout=timeout)[1]
        rc: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        rc, stderr = f"timeout after {timeout:.0f} s", ""
    wall = time.perf_counter() - t
    rss = [line.split()[1:] for line in stderr.splitlines() if line.startswith("RSS_KIB ")]
    errors = [line for line in stderr.splitlines() if line.strip() and not line.startswith("RSS_KIB ")][-1:]
    return {
        "wall_s": wall,
        "rss_gib": int(rss[-1][0]) / 2**20 if rss else math.nan,
        "rc": rc,
        "cpu_s": float(rss[-1][1]) + float(rss[-1][2]) if rss else math.nan,
        "error": (errors or [""])[0],
        "page_mib": out.stat().st_size / 2**20 if out.exists() else math.nan,
    }


def open_seconds(page: Path) -> float:
    """Seconds from navigation to the load event plus two drawn frames, in headless Chromium."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _browser import Browser, find_chromium

    b = Browser(find_chromium())
    try:
        b.open(HERE)  # warm the browser on any page first: its own start-up is not the page's cost
        t = time.perf_counter()
        b.open(page)
        return time.perf_counter() - t
    finally:
        b.close()


def exponent(rows: list[dict]) -> float:
    """Least-squares slope of log wall time on log models over the 1k / 3k / 10k cases."""
    import numpy as np

    pts = [(r["models"], r["wall_s"]) for r in rows if r["case"] in ("m1000", "m3000", "m10000") and r["rc"] == 0]
    if len(pts) < 2:
        return math.nan
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def cpu_exponent(rows: list[dict]) -> float:
    """As `exponent`, on CPU seconds (steadier than wall time on a shared machine)."""
    return exponent([{**r, "wall_s": r["cpu_s"]} for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, action="append", help="code tree(s) to run (default: this one)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {', '.join(CASES)}")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per case")
    parser.add_argument("--keep", type=Path, default=None, help="folder for inputs and pages (default: temp)")
    parser.add_argument(
        "--stored",
        action="store_true",
        help="also the 5 000-trial journal and PostgreSQL studies (benchmarks/stored_scale.py)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    parser.add_argument(
        "--browser",
        action="store_true",
        help="time opening each NARes page in headless "
        "Chromium (target ≤ 3 s: navigation to load event and two frames drawn)",
    )
    args = parser.parse_args()
    codes = args.code or [HERE.parent]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="robustarch-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    inputs = make_inputs(folder, cases)
    rows = []
    print(
        f"{'code':28s} {'case':10s} {'models':>6s} {'samples':>7s} {'wall s':>8s} {'CPU s':>8s} {'RSS GiB':>8s} "
        f"{'page MiB':>8s}  target",
        flush=True,
    )
    for code in codes:
        for case in cases:
            n, samples = CASES[case]
            models_path, samples_path = inputs[case]
            out = folder / f"{code.resolve().name}-{case}.html"
            r = {
                "code": str(code),
                "case": case,
                "models": n,
                "samples": samples,
                **run_case(code, models_path, samples_path, out, args.timeout),
            }
            rows.append(r)
            target = TARGETS.get(case)
            verdict = ""
            if target:
                ok = (
                    r["rc"] == 0
                    and r["wall_s"] <= target[0]
                    and r["rss_gib"] <= target[1]
                    and r["page_mib"] <= target[2]
                )
                verdict = f"≤ {target[0]} s, ≤ {target[1]} GiB, ≤ {target[2]} MiB: {'met' if ok else 'NOT met'}"
            if r["rc"] != 0:
                verdict += f" FAILED ({r['rc']}): {r['error']}"
            print(
                f"{str(code)[-28:]:28s} {case:10s} {n:6d} {samples:7d} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['rss_gib']:8.2f} "
                f"{r['page_mib']:8.2f}  {verdict}",
                flush=True,
            )
        k = exponent([r for r in rows if r["code"] == str(code)])
        if math.isfinite(k):
            print(
                f"{str(code)[-28:]:28s} growth exponent in models (1k/3k/10k): wall time {k:.2f}, CPU time "
                f"{cpu_exponent([r for r in rows if r['code'] == str(code)]):.2f} (target ≤ 1.1: "
                f"{'met' if k <= 1.1 else 'NOT met'})",
                flush=True,
            )
    if args.browser:
        for r in rows:
            page = folder / f"{Path(r['code']).resolve().name}-{r['case']}.html"
            if r["case"] == "nares" and page.exists():
                print(
                    f"{r['code'][-28:]:28s} NARes page opens in Chromium in {open_seconds(page):.2f} s (target ≤ 3 s)",
                    flush=True,
                )
    if args.stored:
        from stored_scale import main as stored_main

        stored_main([])
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
