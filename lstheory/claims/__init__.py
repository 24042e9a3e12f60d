"""The claims registry: the single source of truth for what lstheory asserts and checks.

>>> from lstheory.claims import all_claims
>>> len(all_claims()) >= 8
True
"""

from lstheory.claims.registry import (
    DEFAULT_LEVELS,
    LEVELS,
    STATUS_MEANINGS,
    STATUSES,
    CheckContext,
    CheckResult,
    Claim,
    all_claims,
    get_claim,
)

__all__ = ["LEVELS", "STATUSES", "CheckContext", "CheckResult", "Claim", "all_claims", "get_claim"]
__all__ += ["DEFAULT_LEVELS", "STATUS_MEANINGS"]
