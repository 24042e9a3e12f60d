"""Claims about trained networks, checked at the ``trained`` level on scikit-learn's digits.

Each claim's status says whether the source's effect shows in lstheory's own
run (``reproduced``) or not (``not reproduced``); its trained check runs the
experiment (:mod:`lstheory.trained.experiments`) and passes when the
measurement agrees with the registered status, so a claim is never tuned until
it passes and a status that stops matching the data fails loudly.  The figures
measured when the docs were last recorded are in ``docs/data/trained_claims.json``.
"""

from __future__ import annotations

from typing import Callable

from lstheory.claims.registry import CheckContext, CheckResult, Claim
from lstheory.closed_form import logit_gap
from lstheory.trained import experiments as setting  # the experiments' fixed settings (constants only)

MULLER = "Müller, Kornblith, Hinton 2019, 'When Does Label Smoothing Help?', NeurIPS, arXiv 1906.02629"
SETUP = (f"an MLP {'-'.join(map(str, setting.WIDTHS))} trained full-batch on 1,000 digits images (seeds "
         f"{', '.join(map(str, setting.SEEDS))}) with and without label_smoothing = {setting.EPS}")
THEORY_GAP = float(logit_gap(10, setting.EPS, convention=setting.CONVENTION))


def trained_check(claim_id: str, experiment_name: str) -> Callable[[CheckContext], CheckResult]:
    """A check that runs ``lstheory.trained.experiments.<experiment_name>`` and compares its verdict with the
    registered status of ``claim_id``.

    The experiments train on the CPU, single-threaded, whatever the context's device.
    """

    def check(context: CheckContext) -> CheckResult:
        from lstheory.trained import experiments

        measurement = getattr(experiments, experiment_name)()
        status = next(claim.status for claim in CLAIMS if claim.id == claim_id)
        expected = status == "reproduced"
        verdict = "the effect shows" if measurement.reproduced else "the effect does not show"
        detail = measurement.summary
        if measurement.reproduced != expected:
            detail += f" -- {verdict}, but the claim is registered as {status!r}"
        return CheckResult(measurement.reproduced == expected, None, detail,
                           {"reproduced": measurement.reproduced, **measurement.figures})

    return check


CLAIMS = (
    Claim(
        id="trained.gap",
        statement=f"Trained with smoothing, a network's train-set mean gap z_y - mean_(i != y) z_i approaches the closed "
        f"form logit_gap(10, {setting.EPS}, '{setting.CONVENTION}') = {THEORY_GAP:.4f}: within "
        f"{setting.GAP_RELATIVE_TOLERANCE:.0%} for every seed ({SETUP}).",
        source=f"{MULLER}, sec. 2 (logits of the true class a fixed distance from the others); the closed form of "
        "Szegedy et al. 2016, arXiv 1512.00567, sec. 7",
        status="reproduced",
        checks={"trained": trained_check("trained.gap", "trained_gap")},
    ),
    Claim(
        id="trained.calibration",
        statement="Label smoothing lowers the expected calibration error (15 bins) against no smoothing, and temperature "
        f"scaling of the unsmoothed network reaches a comparable ECE (within {setting.ECE_COMPARABLE}) ({SETUP}; "
        "T fitted on 300 validation images, ECE on 497 test images).",
        source=f"{MULLER}, sec. 3, Table 3",
        status="not reproduced",
        checks={"trained": trained_check("trained.calibration", "calibration")},
    ),
    Claim(
        id="trained.penultimate_clusters",
        statement="Label smoothing tightens the penultimate layer's class clusters: the within- over between-class "
        f"spread of its activations falls, on the training and the test images ({SETUP}).",
        source=f"{MULLER}, sec. 2, Fig. 1",
        status="reproduced",
        checks={"trained": trained_check("trained.penultimate_clusters", "penultimate_clusters")},
    ),
    Claim(
        id="trained.neural_collapse",
        statement="A network with weight decay on its classifier and a decay on its features lands near "
        f"lstheory.neural_collapse_optimum's confidence (within {setting.NC_CONFIDENCE_TOLERANCE} at lambda_W = "
        f"lambda_H = {', '.join(f'{d:g}' for d in setting.NC_DECAYS)}, the last past the threshold; K = 10, n = 100, "
        f"eps = {setting.EPS} {setting.CONVENTION}): a 64-64-64 backbone whose linear output is the feature, a linear "
        "head, the model's objective minimised by Adam then L-BFGS.",
        source="Zhou et al. 2022, arXiv 2210.02192; Guo et al. 2024, arXiv 2402.03979 (the unconstrained features "
        "model as a stand-in for a trained network's last layer)",
        status="reproduced",
        checks={"trained": trained_check("trained.neural_collapse", "neural_collapse")},
    ),
    Claim(
        id="trained.distillation",
        statement="A teacher trained with label smoothing distils worse: students "
        f"({'-'.join(map(str, setting.STUDENT_WIDTHS))}, trained on the teacher's softened predictions at T = "
        f"{', '.join(f'{t:g}' for t in setting.TEMPERATURES)}; the best T per seed) reach a lower test accuracy from it "
        f"than from the unsmoothed teacher ({SETUP}).",
        source=f"{MULLER}, sec. 4 (knowledge distillation)",
        status="not reproduced",
        checks={"trained": trained_check("trained.distillation", "distillation")},
    ),
)
