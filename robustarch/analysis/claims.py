"""The registry of claims a study can test: each with its kind of verdict (analysis.verdicts), its
test, margin (a named setting with its default and the reason for it), minimum n and the columns it
needs. A recipe names its claims (`claims:` in `studies/*.yaml`); a study without names gets every
claim its data can carry, and a claim whose columns are missing or constant is skipped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from .verdicts import min_n_for_equivalence


@dataclass(frozen=True)
class Claim:
    key: str
    title: str  # the claim, as the page states it
    kind: str  # relation, equivalence, form or heterogeneity (see analysis.verdicts)
    test: str
    min_n: int  # fewer models (or pairs) → inconclusive with the reason, no p
    columns: tuple[str, ...] = ()  # model-table columns that must vary for the claim to mean anything
    direction: int = 0  # a relation's claimed sign
    margin: float | None = None
    margin_reason: str = ""


SIZE_MARGIN = 0.3
SIZE_REASON = (
    "a rank partial correlation below 0.3 (Cohen's 'medium') leaves size under 9% of the rank "
    "variance that clean accuracy does not explain"
)
LINK_MARGIN = 0.25
LINK_REASON = (
    "a log–log slope within 1 ± 0.25 keeps ε_min within a factor 10^0.25 ≈ 1.8 of proportional to "
    "the margin over a decade of margins"
)
SHAPE_MARGIN = 0.25
SHAPE_REASON = "a quarter of a unit of exponent, about the spread of slopes across models in Cubuk et al. (2017)"
CURVATURE_MARGIN = 0.2
CURVATURE_REASON = (
    "a change of the local log–log slope below 0.2 across the decade: a straight line then misstates "
    "the error by at most ~6% of its value anywhere in the window"
)
TAU_MARGIN = 0.1
TAU_REASON = "a between-model SD of k below 0.1 puts 95% of models' k within ±0.2 of the pooled k"
ICC_MARGIN = 0.5
ICC_REASON = (
    "'most of the variance' means more than half: an ICC above 0.5 puts more of robust accuracy's spread "
    "between architectures than between seeds and test samples, and makes a single-seed number at least "
    "as much architecture as noise (reliability above one half)"
)
DEPTH_CALIPER = 0.02  # clean accuracies of a matched pair differ by at most this
PARAM_RATIO = 1.25  # parameter counts of a matched pair differ by at most this factor

CLAIMS: dict[str, Claim] = {
    c.key: c
    for c in (
        Claim(
            "robust_tracks_clean",
            "Robust accuracy rises with clean accuracy",
            "relation",
            "Spearman rank correlation (two-sided; permutation p below 30 models)",
            8,
            ("robust_accuracy", "clean_accuracy"),
            direction=1,
        ),
        Claim(
            "conditional_tracks_clean",
            "Among clean-correct samples, the share that survives the attack rises with clean accuracy",
            "relation",
            "Spearman rank correlation (two-sided; permutation p below 30 models)",
            8,
            ("robust_accuracy", "clean_accuracy"),
            direction=1,
        ),
        Claim(
            "size_adds_little",
            "Model size adds little once clean accuracy is known",
            "equivalence",
            f"TOST / 90% interval inclusion on the Fisher z of the rank partial correlation (t with n − 3 df, "
            f"Bonett–Wright SE), margin ±{SIZE_MARGIN}; with per-model SEs, on the disattenuated partial correlation "
            f"(intersection–union with a bootstrap TOST); with families, families count as n and the bootstrap "
            f"resamples them",
            min_n_for_equivalence(SIZE_MARGIN),
            ("robust_accuracy", "clean_accuracy", "log10_params"),
            margin=SIZE_MARGIN,
            margin_reason=SIZE_REASON,
        ),
        Claim(
            "power_law",
            "At small ε, adversarial error ∝ ε^k (one power law per model)",
            "form",
            "censored-exponential (Hill) fit per model in its own window; Rao score test of curvature summed over "
            "models (parametric bootstrap); TOST (Hartung–Knapp t) on the pooled curvature, margin "
            f"±{CURVATURE_MARGIN} change of local slope across the window",
            3,
            margin=CURVATURE_MARGIN,
            margin_reason=CURVATURE_REASON,
        ),
        Claim(
            "universality",
            "One exponent k for all models",
            "heterogeneity",
            "likelihood-ratio test of one k (parametric bootstrap); gamma-frailty profile-likelihood test of τ ≥ "
            f"margin (parametric bootstrap), τ < {TAU_MARGIN}",
            3,
            margin=TAU_MARGIN,
            margin_reason=TAU_REASON,
        ),
        Claim(
            "margin_explains_slope",
            "Each sample's minimal ε is proportional to its logit margin (the linear-margin "
            "explanation of the power law)",
            "equivalence",
            "TOST (one-sample t over models) on the mean within-model Gehan rank slope of log ε on log margin "
            f"(never-broken samples censored), 1 ± {LINK_MARGIN}",
            5,
            margin=LINK_MARGIN,
            margin_reason=LINK_REASON,
        ),
        Claim(
            "slope_matches_margin_tail",
            "The power-law slope matches the exponent of the small-margin tail",
            "equivalence",
            "TOST (Hartung–Knapp t) on the random-effects pooled (slope − tail exponent), both "
            f"censored-exponential fits, margin ±{SHAPE_MARGIN}",
            5,
            margin=SHAPE_MARGIN,
            margin_reason=SHAPE_REASON,
        ),
        Claim(
            "deeper_more_robust",
            "At matched parameter count and clean accuracy, deeper nets are more robust",
            "relation",
            f"Wilcoxon signed-rank (two-sided) on disjoint pairs with params within ×{PARAM_RATIO:g} and "
            f"clean accuracy within ±{DEPTH_CALIPER:g}; Hodges–Lehmann estimate",
            8,
            ("depth", "params"),
            direction=1,
        ),
        Claim(
            "robust_falls_with_memorization",
            "At fixed label noise, robust accuracy falls as the network memorizes (as the generalization gap grows)",
            "relation",
            "Spearman ρ within each label-noise level > 0, pooled with weights n − 1 (exact null variance; two-sided)",
            8,
            ("label_noise", "generalization_gap", "robust_accuracy"),
            direction=-1,
        ),
        Claim(
            "early_stop_preserves_robustness",
            "Under label noise, stopping early (a higher temperature) keeps robust accuracy higher",
            "relation",
            "Spearman ρ of temperature and robust accuracy within each label-noise level > 0, pooled with weights "
            "n − 1 (exact null variance; two-sided)",
            8,
            ("label_noise", "robust_accuracy"),
            direction=1,
        ),
        Claim(
            "architecture_explains_robust",
            "Architecture explains most of the variance in robust accuracy",
            "relation",
            f"ICC(1) against {ICC_MARGIN} (one-way random effects over architectures, replicate seeds within; two-sided "
            "p of the F pivot MSB/MSW, Searle 1971, n0 for unbalanced designs)",
            8,
            ("robust_accuracy",),
            direction=1,
            margin=ICC_MARGIN,
            margin_reason=ICC_REASON,
        ),
    )
}

CUBUK = (
    "robust_tracks_clean",
    "conditional_tracks_clean",
    "size_adds_little",
    "power_law",
    "universality",
    "margin_explains_slope",
    "slope_matches_margin_tail",
    "deeper_more_robust",
)
PHASE = ("robust_falls_with_memorization", "early_stop_preserves_robustness")


def resolve(names=None) -> list[Claim]:
    """The claims `names` (a recipe's `claims:` list) from the registry; None → every claim. An unknown
    name is a UserError naming the known ones."""
    if names is None:
        return list(CLAIMS.values())
    unknown = [n for n in names if n not in CLAIMS]
    if unknown:
        raise UserError(f"claims: unknown claim(s) {', '.join(unknown)}; known: {', '.join(CLAIMS)}")
    return [CLAIMS[n] for n in names]
