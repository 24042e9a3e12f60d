"""The committed measurements of the trained level (``docs/data/trained_claims.json``).

``lstheory verify --level trained --record`` writes them; ``lstheory docs``
reads them, so the generated figures and tables do not depend on the machine
that builds the docs.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path


def _environment() -> dict:
    import numpy
    import torch

    try:
        import sklearn

        scikit_learn = sklearn.__version__
    except ImportError:  # the record is written after a trained run, so this does not happen in practice
        scikit_learn = None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": scikit_learn, "machine": platform.machine()}


def write_records(report, path: Path) -> dict:
    """Store every trained outcome of ``report`` (a :class:`lstheory.verify.VerificationReport`) at ``path``.

    Claims already recorded there and not in this run are kept.  Returns the written data.
    """
    data = load_records(path)
    claims = data.get("claims", {})
    for outcome in report.outcomes:
        if outcome.level != "trained":
            continue
        claims[outcome.claim.id] = {
            "status": outcome.claim.status,
            "passed": outcome.result.passed,
            "summary": outcome.result.detail,
            "seconds": round(outcome.seconds, 1),
            "figures": dict(outcome.result.figures),
        }
    data = {"written_by": "lstheory verify --level trained --record", "environment": _environment(),
            "claims": dict(sorted(claims.items()))}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data


def load_records(path: Path) -> dict:
    """The recorded data, or ``{}`` when nothing has been recorded."""
    path = Path(path)
    if not path.exists():
        return {}
    return json.loads(path.read_text())
