"""The result of an attack suite on one model: tidy per-sample and per-ε tables, sanity flags."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..metrics import WORST_CASE, eps_tolerance
from .base import AttackKind
from .spec import SuiteConfig


def min_eps(per_sample: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """Per sample, the smallest ε at which any of the `labels` attacks broke it (NaN, where an
    attack did not see the sample, counts as never)."""
    cols = per_sample[[f"eps_{a}" for a in labels]].to_numpy(dtype=float)
    return np.min(np.where(np.isnan(cols), np.inf, cols), axis=1)


def robust_fraction(eps_broken: np.ndarray, eps: float) -> tuple[float, int]:
    """Robust accuracy at `eps` over the samples an attack saw (non-NaN), and how many it saw."""
    seen = ~np.isnan(eps_broken)
    robust = seen & (eps_broken > eps_tolerance(eps))
    return float(robust.sum() / seen.sum()), int(seen.sum())


def per_sample_table(
    y: torch.Tensor, clean_correct: torch.Tensor, margin: torch.Tensor, eps_broken: dict[str, np.ndarray]
) -> pd.DataFrame:
    """One row per sample: label, clean_correct, margin, `eps_<attack>` and `min_adversarial_eps`."""
    cc = clean_correct.cpu().numpy()
    per_sample = pd.DataFrame(
        {"sample": np.arange(len(cc)), "label": y.cpu().numpy(), "clean_correct": cc, "margin": margin.cpu().numpy()}
    )
    for label, e in eps_broken.items():
        per_sample[f"eps_{label}"] = e
    per_sample["min_adversarial_eps"] = min_eps(per_sample, list(eps_broken))
    return per_sample


def curve_from(per_sample: pd.DataFrame, labels: list[str], grid: tuple[float, ...]) -> pd.DataFrame:
    """One row per ε × attack (and the worst case): robust accuracy over the samples the attack saw."""
    rows = []
    for e in grid:
        for label in list(labels) + [WORST_CASE]:
            col = per_sample["min_adversarial_eps" if label == WORST_CASE else f"eps_{label}"].to_numpy()
            robust, n = robust_fraction(col, e)
            rows.append({"attack": label, "eps": e, "robust_accuracy": robust, "n": n})
    return pd.DataFrame(rows)


def kept_adversarials(per_sample: pd.DataFrame, adv: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Per attack and for the worst case: the verified adversarial at each sample's minimal ε."""
    kept = {
        label: {"x_adv": a.cpu(), "eps": torch.tensor(per_sample[f"eps_{label}"].to_numpy())}
        for label, a in adv.items()
    }
    best = per_sample[[f"eps_{a}" for a in adv]].to_numpy(dtype=float)
    pick = np.argmin(np.where(np.isnan(best), np.inf, best), axis=1)
    labels = list(adv)
    worst = torch.stack([adv[labels[k]][j] for j, k in enumerate(pick)]).cpu()
    kept[WORST_CASE] = {"x_adv": worst, "eps": torch.tensor(per_sample["min_adversarial_eps"].to_numpy())}
    return kept


@dataclass
class AttackResult:
    """What a suite found on one model.

    `per_sample`: one row per sample — `label`, `clean_correct`, `margin` (top-1 minus runner-up
    logit), `min_adversarial_eps` (smallest ε at which any attack broke it; inf if never; 0 if
    misclassified clean) and `eps_<attack>` (the same per attack; NaN where that attack did not run,
    see `AttackConfig.samples`). Fixed-ε attacks give ε on the grid, minimization attacks the
    measured distance. `curve`: one row per attack × ε — `robust_accuracy` (fraction of the samples
    the attack saw that are clean-correct and unbroken at ε) and `n`; `attack == "worst_case"` is the
    per-sample worst case over attacks (mean over samples of the min over attacks). `sanity`: named
    checks, each a dict with `ok`, `severity` ('invalid': the numbers cannot be trusted; 'warning':
    an attack was under-powered, see `sanity.SEVERITY`) and the numbers behind it; `valid` says no
    invalid check failed, `sanity_ok` that none failed at all. `adversarials` (on request): per attack
    and for the worst case, `x_adv` (the verified adversarial at the sample's minimal ε, NaN if none)
    and `eps`.
    """

    suite: SuiteConfig
    per_sample: pd.DataFrame
    curve: pd.DataFrame
    sanity: dict[str, dict]
    seconds: float
    adversarials: dict[str, dict[str, torch.Tensor]] | None = None
    attack_seconds: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, AttackKind] = field(default_factory=dict)  # attack label → its kind

    @property
    def clean_accuracy(self) -> float:
        return float(self.per_sample["clean_correct"].mean())

    def robust_accuracy(self, eps: float, attack: str = WORST_CASE) -> float:
        rows = self.curve[(self.curve["attack"] == attack) & np.isclose(self.curve["eps"], eps)]
        if rows.empty:
            raise KeyError(f"no result for attack={attack!r} at eps={eps}")
        return float(rows["robust_accuracy"].iloc[0])

    @property
    def median_min_eps(self) -> float:
        """Median minimal adversarial ε over clean-correct samples (inf when most were never broken)."""
        values = self.per_sample.loc[self.per_sample["clean_correct"], "min_adversarial_eps"]
        return float(np.median(values)) if len(values) else float("nan")

    @property
    def sanity_ok(self) -> bool:
        """No check failed, warnings included."""
        return all(check["ok"] for check in self.sanity.values())

    def _failed(self, severity: str) -> list[str]:
        # A check stored before severities existed counts as invalid: the cautious reading.
        return [name for name, c in self.sanity.items() if not c["ok"] and c.get("severity", "invalid") == severity]

    @property
    def invalid_checks(self) -> list[str]:
        """Names of the failed checks that make the evaluation untrustworthy."""
        return self._failed("invalid")

    @property
    def warning_checks(self) -> list[str]:
        """Names of the failed checks that only warn (an attack that more effort would strengthen)."""
        return self._failed("warning")

    @property
    def valid(self) -> bool:
        """No invalid check failed: the robust accuracy can be used (warnings may remain)."""
        return not self.invalid_checks

    def curve_table(self) -> pd.DataFrame:
        """The ε-curve as a wide table: one row per ε, one column per attack (worst case last)."""
        wide = self.curve.pivot(index="eps", columns="attack", values="robust_accuracy")
        order = [a for a in self.curve["attack"].drop_duplicates() if a != WORST_CASE] + [WORST_CASE]
        return wide[order]

    def sanity_table(self) -> pd.DataFrame:
        """One row per check: `check`, `ok`, `severity` and its numbers as a compact text."""
        rows = [
            {
                "check": name,
                "ok": bool(c["ok"]),
                "severity": c.get("severity", "invalid"),
                "numbers": ", ".join(f"{k}={_fmt(v)}" for k, v in c.items() if k not in ("ok", "severity")),
            }
            for name, c in self.sanity.items()
        ]
        return pd.DataFrame(rows)

    def save(self, folder: str | Path) -> list[Path]:
        """Write curve.csv, per_sample.csv, sanity.json (and adversarials.pt when kept)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "curve.csv", folder / "per_sample.csv", folder / "sanity.json"]
        self.curve.to_csv(paths[0], index=False)
        self.per_sample.to_csv(paths[1], index=False)
        paths[2].write_text(json.dumps(self.sanity, indent=2, default=float) + "\n")
        if self.adversarials is not None:
            paths.append(folder / "adversarials.pt")
            torch.save(self.adversarials, paths[-1])
        return paths


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], float):
        return "[" + " ".join(f"{x:.3g}" for x in v) + "]"
    return str(v)
