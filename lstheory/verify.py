"""Run every registered check and report: the engine behind ``lstheory verify``."""

from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass
from typing import Iterable, Sequence

from lstheory._progress import progress_bar
from lstheory._validation import check_seed
from lstheory.claims.registry import DEFAULT_LEVELS, LEVELS, CheckContext, CheckResult, Claim, all_claims


@dataclass(frozen=True)
class CheckOutcome:
    """One check of one claim at one level, with how long it took."""

    claim: Claim
    level: str
    result: CheckResult
    seconds: float


@dataclass(frozen=True)
class VerificationReport:
    """All outcomes of a verification run."""

    outcomes: tuple[CheckOutcome, ...]
    device: str
    unchecked: tuple[Claim, ...] = ()
    """Claims with no check at the levels run (for instance the trained claims in a default run)."""

    @property
    def passed(self) -> bool:
        return all(o.result.passed for o in self.outcomes)

    def claims(self) -> list[Claim]:
        seen: dict[str, Claim] = {}
        for outcome in self.outcomes:
            seen.setdefault(outcome.claim.id, outcome.claim)
        return list(seen.values())

    def as_dict(self) -> dict:
        """The JSON-ready form: ``{"passed", "device", "claims": [{"id", ..., "checks": [...]}]}``."""
        claims = []
        for claim in self.claims():
            checks = [
                {
                    "level": o.level,
                    "passed": o.result.passed,
                    "max_error": _json_number(o.result.max_error),
                    "detail": o.result.detail,
                    "seconds": round(o.seconds, 3),
                    **({"figures": dict(o.result.figures)} if o.result.figures else {}),
                }
                for o in self.outcomes
                if o.claim.id == claim.id
            ]
            claims.append(
                {
                    "id": claim.id,
                    "statement": claim.statement,
                    "source": claim.source,
                    "status": claim.status,
                    "correction": claim.correction,
                    "checks": checks,
                }
            )
        return {"passed": self.passed, "device": self.device, "claims": claims}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def table(self) -> str:
        """A plain-text table: claim, level, result, worst error."""
        rows = [("claim", "level", "result", "worst error", "seconds")]
        for o in self.outcomes:
            error = "-" if o.result.max_error is None else f"{o.result.max_error:.3g}"
            rows.append((o.claim.id, o.level, "pass" if o.result.passed else "FAIL", error, f"{o.seconds:.2f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        failed = [o for o in self.outcomes if not o.result.passed]
        claims = len(self.claims())
        summary = f"{claims} claims, {len(self.outcomes)} checks on {self.device}: " + (
            "all passed" if not failed else f"{len(failed)} FAILED"
        )
        details = [f"  {o.claim.id} [{o.level}]: {o.result.detail}" for o in failed]
        measured = [f"  {o.claim.id} ({o.claim.status}): {o.result.detail}" for o in self.outcomes
                    if o.level == "trained" and o.result.passed]
        if measured:
            lines += ["", "Measured on the trained level:", *measured]
        if self.unchecked:
            trained = any("trained" in c.checks for c in self.unchecked)
            summary += f"; {len(self.unchecked)} claim(s) have no check at these levels" + (
                " (the trained ones run with `lstheory verify --level trained`)" if trained else "")
        return "\n".join(lines + [""] + ([summary, *details] if details else [summary]))


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def run_verification(
    claims: Iterable[Claim] | None = None,
    *,
    levels: Sequence[str] = DEFAULT_LEVELS,
    device: str = "cpu",
    seed: int = 0,
    progress: bool | None = False,
) -> VerificationReport:
    """Run each claim's checks at the chosen levels (by default every level but ``trained``).

    A check that raises is reported as failed with the exception in its
    detail; the run goes on.  ``progress``: a tqdm bar on stderr over the
    checks, ``None`` only on a terminal, ``True`` always, ``False`` never.
    """
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise ValueError(f"levels must be among {LEVELS}; got {sorted(unknown)}")
    context = CheckContext(device=device, seed=check_seed(seed))
    outcomes = []
    claims = all_claims() if claims is None else tuple(claims)
    unchecked = tuple(c for c in claims if not set(c.checks) & set(levels))
    chosen = [(claim, level) for claim in claims for level in LEVELS if level in levels and level in claim.checks]
    bar = progress_bar(chosen, show=progress, desc="verify", unit="check")
    for claim, level in bar:
        bar.set_description_str(f"verify {claim.id} [{level}]")
        start = time.perf_counter()
        try:
            result = claim.checks[level](context)
        except Exception as error:  # reported, not raised: one broken check must not hide the others
            last = traceback.extract_tb(error.__traceback__)[-1]
            result = CheckResult(False, None, f"raised {type(error).__name__}: {error} ({last.filename}:{last.lineno})")
        outcomes.append(CheckOutcome(claim, level, result, time.perf_counter() - start))
    return VerificationReport(tuple(outcomes), device, unchecked)
