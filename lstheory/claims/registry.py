"""The claims registry: every claim once, with its source and its checks at each level.

A :class:`Claim` has an id, a statement (what lstheory asserts, already
corrected where the source printed it wrongly), a source (paper and section,
or the seed), a status (one of :data:`STATUSES`, explained in
:data:`STATUS_MEANINGS`), and one check per level (``symbolic``, ``scipy``,
``torch``, and ``trained`` for claims about trained networks).  ``lstheory
verify``, the tests and the docs' claims table all read :func:`all_claims`;
none keeps its own list.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping

LEVELS: tuple[str, ...] = ("symbolic", "scipy", "torch", "trained")
DEFAULT_LEVELS: tuple[str, ...] = ("symbolic", "scipy", "torch")
"""What ``lstheory verify`` runs without ``--level``; the ``trained`` level trains networks and is run on request."""
STATUSES: tuple[str, ...] = ("verified", "corrected", "refuted", "reproduced", "not reproduced")
STATUS_MEANINGS: dict[str, str] = {
    "verified": "the source's statement holds",
    "corrected": "the source printed it wrongly; the corrected statement is what is checked",
    "refuted": "the source's statement fails",
    "reproduced": "an effect the source reports for trained networks shows in lstheory's own training run "
                  "(the trained level), by the criterion the claim states",
    "not reproduced": "that effect does not show in lstheory's training run; the claim is registered with the "
                      "measured figures, and the trained check passes when the measurement still says so",
}

# Modules that define claims, in the order the registry lists them.
CLAIM_MODULES: tuple[str, ...] = (
    "lstheory.claims.seed",
    "lstheory.claims.optimum",
    "lstheory.claims.conventions",
    "lstheory.claims.literature",
    "lstheory.claims.tensor_parallel",
    "lstheory.claims.neural_collapse",
    "lstheory.claims.curvature",
    "lstheory.claims.population",
    "lstheory.claims.logit_distances",
    "lstheory.claims.label_relaxation",
    "lstheory.claims.mixup",
    "lstheory.claims.masking",
    "lstheory.claims.selective",
    "lstheory.claims.online_smoothing",
    "lstheory.claims.loss_floor",
    "lstheory.claims.trained",
    "lstheory.claims.linear_head",
)


@dataclass(frozen=True)
class CheckContext:
    """What a check may depend on: the torch device, a seed."""

    device: str = "cpu"
    seed: int = 0


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    ``max_error`` is the worst deviation measured (0.0 for an exact proof;
    ``None`` when a proof failed and no number applies); ``detail`` says what
    was compared; ``figures`` holds a trained check's measurements (JSON-ready),
    which ``lstheory verify --level trained --record`` stores for the docs.
    """

    passed: bool
    max_error: float | None
    detail: str = ""
    figures: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checks compute with NumPy; store plain Python types (JSON-ready).
        object.__setattr__(self, "passed", bool(self.passed))
        if self.max_error is not None:
            object.__setattr__(self, "max_error", float(self.max_error))


Check = Callable[[CheckContext], CheckResult]


@dataclass(frozen=True)
class Claim:
    """One registered claim.  ``checks`` maps a level name to its check."""

    id: str
    statement: str
    source: str
    status: Literal["verified", "corrected", "refuted", "reproduced", "not reproduced"]
    checks: Mapping[str, Check] = field(default_factory=dict)
    correction: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"claim {self.id}: status must be one of {STATUSES}; got {self.status!r}")
        unknown = set(self.checks) - set(LEVELS)
        if unknown:
            raise ValueError(f"claim {self.id}: unknown levels {sorted(unknown)}; valid: {LEVELS}")
        if self.status == "corrected" and not self.correction:
            raise ValueError(f"claim {self.id}: a corrected claim must say what was corrected")
        trained_status = self.status in ("reproduced", "not reproduced")
        if trained_status != ("trained" in self.checks):
            raise ValueError(f"claim {self.id}: the statuses 'reproduced' and 'not reproduced' belong to claims with a "
                             f"trained check, and only to them; got status {self.status!r} with levels {sorted(self.checks)}")


def all_claims() -> tuple[Claim, ...]:
    """Every registered claim, in registry order; ids are unique."""
    claims: list[Claim] = []
    for module_name in CLAIM_MODULES:
        claims.extend(importlib.import_module(module_name).CLAIMS)
    ids = [claim.id for claim in claims]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate claim ids in the registry: {duplicates}")
    return tuple(claims)


def get_claim(claim_id: str) -> Claim:
    """The claim with this id (``KeyError`` listing the ids otherwise)."""
    for claim in all_claims():
        if claim.id == claim_id:
            return claim
    raise KeyError(f"no claim {claim_id!r}; registered: {[c.id for c in all_claims()]}")
