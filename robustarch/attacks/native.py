"""FGSM/FGM and PGD as attack objects over robustarch's own batched torch engine (`gradient`).

Why not Foolbox here: its fixed-ε attacks run every step on every sample, for every ε of a sweep.
The engine drops a sample the moment the model misclassifies it, and the suite runner starts each
smaller ε from the adversarial of the larger one, so a whole ε-curve costs about one attack.
"""

from __future__ import annotations

from ..presets import Section
from .base import FixedEpsilonAttack, SingleStepAttack, register_native
from .gradient import LOSSES, PGDParams, fgsm_all_eps, pgd


@register_native(FGSM="linf", LinfFastGradientAttack="linf", FGM="l2", L2FastGradientAttack="l2")
class NativeFGSM(SingleStepAttack):
    """One gradient, one ray: FGSM's (L∞) or FGM's (L2) point at every ε of the grid."""

    loss = "ce"

    @classmethod
    def is_deterministic(cls, settings) -> bool:
        return True

    def run_grid(self, target, x, y, grid):
        return fgsm_all_eps(target.net, x, y, grid, self.threat_model, target.bounds)


@register_native(
    LinfPGD="linf",
    LinfProjectedGradientDescentAttack="linf",
    PGD="linf",
    L2PGD="l2",
    L2ProjectedGradientDescentAttack="l2",
)
class NativePGD(FixedEpsilonAttack):
    """Projected gradient ascent (Madry et al. 2018), step 2.5·ε/steps unless set, stopping per sample."""

    # the PGDParams fields a suite may set; unset ones keep PGDParams' defaults
    SETTINGS = ("steps", "rel_stepsize", "abs_stepsize", "random_start", "loss")

    @classmethod
    def check_settings(cls, sec: Section) -> None:
        sec.get("steps", int, PGDParams.steps, min=1)
        sec.get("rel_stepsize", float, 1.0, above=0.0)
        sec.get("abs_stepsize", float, 1.0, above=0.0)
        sec.get("loss", str, "ce", choices=LOSSES)
        sec.get("random_start", bool, True)

    @classmethod
    def is_deterministic(cls, settings) -> bool:
        return not settings.get("random_start", PGDParams.random_start)

    @property
    def params(self) -> PGDParams:
        return PGDParams(self.threat_model, **self.settings)

    @property
    def loss(self) -> str:
        return self.params.loss

    def run(self, target, x, y, eps, init):
        return pgd(target.net, x, y, eps, self.params, target.bounds, gen=target.generator, init=init)[0]

    def with_steps_factor(self, factor: int):
        return self._copy_with(steps=self.params.steps * factor)
