"""The "All cells" tables of docs/verdicts.md (model-level claims) and docs/power-law.md (power-law
claims) from `calibration.py --out` CSV files: one markdown row per cell, with its Monte Carlo SE and
whether its size lies in [3.5%, 6.5%].

    python benchmarks/calibration_table.py run1.csv run2.csv ... [--write]

Without --write the rows are printed. With --write each docs table is rewritten in place: every
(claim, models × samples) the CSV files hold replaces the rows of that claim and scale (a rerun
replaces a whole cell group, e.g. 800 studies by 1000), other rows are kept, and the table is sorted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration import SCENARIOS  # noqa: E402

BAND = (0.035, 0.065)
EQUIVALENCE = {"size_adds_little", "margin_explains_slope", "slope_matches_margin_tail"}
POWER_CLAIMS = {"power_law", "universality", "margin_explains_slope", "slope_matches_margin_tail"}
HEADER = "| claim | models × samples | family: truth | rate is | rate of | rate ± MC SE | studies | supported | contradicted | band [3.5%, 6.5%] |"
DOCS = {True: ROOT / "docs" / "power-law.md", False: ROOT / "docs" / "verdicts.md"}


def _pct(v: float) -> str:
    return "–" if pd.isna(v) else f"{100 * v:.1f}%"


def rate_is(scenario: str, claim: str) -> str:
    """size or power: a scenario marked size+power measures the first claim's size, the second's power."""
    what, claims = SCENARIOS[scenario][1], SCENARIOS[scenario][0].split("+")
    if what == "size+power":
        return "size" if claim == claims[0] else "power"
    return what


def band(r: dict, what: str) -> str:
    """The band cell: in band, not calibrated (which rate), power, or skipped."""
    if what == "power":
        return "– (power)"
    if not r["reps"]:
        return "skipped (n below the claim's minimum)"
    out = []
    if not BAND[0] <= r["rate"] <= BAND[1]:
        out.append(f"rate {_pct(r['rate'])}")
    # an equivalence claim at its margin: "contradicted" is the other path's size
    if r["claim"] in EQUIVALENCE and not BAND[0] <= r["contradicted"] <= BAND[1]:
        out.append(f"contradicted {_pct(r['contradicted'])}")
    small = f" ({r['reps']} studies)" if r["reps"] <= 100 else ""
    if out:
        return f"**not calibrated**: {', '.join(out)}{small}"
    return (
        f"in band, not shown (MC SE at 5%: {100 * (0.05 * 0.95 / r['reps']) ** 0.5:.0f} points)" if small else "in band"
    )


def row(r: dict) -> tuple[tuple, str]:
    """(sort key, markdown row) of one CSV record."""
    m, n = (int(v) for v in r["scale"].split("x"))
    family = "adversarial" if r["scenario"].startswith("adv_") else "original"
    what = rate_is(r["scenario"], r["claim"])
    event = r["event"].replace("|", "\\|")
    rate = "– ± nan" if not r["reps"] else f"{_pct(r['rate'])} ± {100 * r['mc_se']:.1f}"
    cells = [
        f"`{r['claim']}`",
        f"{m} × {n}",
        f"{family}: {r['truth']}",
        what,
        event,
        rate,
        str(r["reps"]),
        _pct(r["supported"]),
        _pct(r["contradicted"]),
        band(r, what),
    ]
    return (r["claim"], m, n, cells[2], event), "| " + " | ".join(cells) + " |"


def _key_of(line: str) -> tuple:
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    m, n = (int(v) for v in cells[1].split(" × "))
    return (cells[0].strip("`"), m, n, cells[2], cells[4])


def rewrite(path: Path, new: dict[tuple, str]) -> None:
    """Replace the table under HEADER in `path` by its kept rows plus `new`, sorted."""
    lines = path.read_text().splitlines()
    start = lines.index(HEADER) + 2
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    groups = {k[:3] for k in new}
    kept = {k: v for v in lines[start:end] if (k := _key_of(v))[:3] not in groups}
    rows = [v for _, v in sorted((kept | new).items())]
    path.write_text("\n".join(lines[:start] + rows + lines[end:]) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="+", type=Path)
    ap.add_argument("--write", action="store_true", help="rewrite the tables in docs/power-law.md and docs/verdicts.md")
    args = ap.parse_args(argv)
    t = pd.concat([pd.read_csv(p) for p in args.csv], ignore_index=True)
    t["reps"] = t["reps"].fillna(0).astype(int)
    for power in (True, False):
        part = t[t["claim"].isin(POWER_CLAIMS) == power]
        rows = dict(row(r) for r in part.to_dict("records"))
        if args.write and rows:
            rewrite(DOCS[power], rows)
            print(f"{DOCS[power].relative_to(ROOT)}: {len(rows)} rows replaced or added")
        else:
            print("\n".join(v for _, v in sorted(rows.items())))


if __name__ == "__main__":
    main()
