"""The literature derivations are proven exactly; the registry carries every source issue 6 names."""

from __future__ import annotations

import pytest

from lstheory.claims import all_claims
from lstheory.symbolic import literature


@pytest.mark.parametrize("name", literature.__all__)
def test_literature_derivation_is_proven(name):
    derivation = getattr(literature, name)()
    unproven = [step.statement for step, ok in derivation.check() if not ok]
    assert not unproven


@pytest.mark.parametrize("k", [3, 4])
def test_concrete_k_variants(k):
    for function in (literature.szegedy_decomposition, literature.yuan_distillation, literature.temperature_scaling):
        assert function(k).proven()


def test_registry_covers_the_literature():
    claims = all_claims()
    assert len(claims) >= 18
    sources = " ".join(c.source for c in claims)
    for author in ("Pereyra", "Müller", "Meister", "Lukasik", "Yuan", "Szegedy", "He et al."):
        assert author in sources, author
    corrected = {c.id for c in claims if c.status == "corrected"}
    assert "literature.pereyra_sign" in corrected
    torch_checked = [c.id for c in claims if "torch" in c.checks]
    assert len(torch_checked) >= 6
