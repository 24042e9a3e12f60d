"""Derivations as structured, exactly checked steps.

A :class:`Step` states one fact in words, holds the SymPy expressions it is
about and the relation between them, and proves it exactly: an identity
``lhs == rhs`` is proven when ``simplify(lhs - rhs)`` is exactly zero (entry
by entry for matrices); ``lhs != rhs`` (a counterexample) when the simplified
difference is provably non-zero; ``lhs > 0`` when SymPy's assumptions system
decides the sign.  No step is ever checked by sampling numbers.

A :class:`Derivation` is an ordered list of steps with a title, printable as
readable text or LaTeX; the derivation scripts in ``derivations/`` and the
docs pages print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import sympy

Relation = Literal["==", "!=", ">0", "<0"]


def _is_exactly_zero(expression: sympy.Basic) -> bool:
    if isinstance(expression, sympy.MatrixBase):
        return all(_is_exactly_zero(entry) for entry in expression)
    if expression == 0:
        return True
    # cancel() is exact and cheap for the rational functions of exponentials met
    # here; simplify() is the general (slower) fallback.
    return sympy.cancel(expression) == 0 or sympy.simplify(expression) == 0


def _is_provably_nonzero(expression: sympy.Basic) -> bool:
    if isinstance(expression, sympy.MatrixBase):
        return any(_is_provably_nonzero(entry) for entry in expression)
    return sympy.simplify(expression).is_zero is False


def _sign_is(expression: sympy.Basic, sign: Literal[1, -1]) -> bool:
    simplified = sympy.simplify(expression)
    return bool(simplified.is_positive) if sign > 0 else bool(simplified.is_negative)


@dataclass(frozen=True)
class Step:
    """One exactly checkable statement of a derivation.

    ``relation`` is ``"=="`` (identity), ``"!="`` (the two sides differ: a
    counterexample), ``">0"`` or ``"<0"`` (the sign of ``lhs``; ``rhs`` is
    ignored).  ``prepare`` rewrites ``lhs - rhs`` before simplification (for
    instance :func:`sympy.expand_log` with ``force=True`` where every
    argument of a logarithm is known to be positive); the step's statement
    must say why that rewrite is valid.
    """

    statement: str
    lhs: sympy.Basic
    rhs: sympy.Basic = sympy.S.Zero
    relation: Relation = "=="
    prepare: Callable[[sympy.Basic], sympy.Basic] | None = field(default=None, compare=False)

    def difference(self) -> sympy.Basic:
        lhs = self.lhs if self.relation in (">0", "<0") else self.lhs - self.rhs
        return self.prepare(lhs) if self.prepare is not None else lhs

    def check(self) -> bool:
        """Prove the step exactly; ``True`` when proven."""
        difference = self.difference()
        if self.relation == "==":
            return _is_exactly_zero(difference)
        if self.relation == "!=":
            return _is_provably_nonzero(difference)
        return _sign_is(difference, 1 if self.relation == ">0" else -1)

    def latex(self) -> str:
        """The step as one LaTeX formula."""
        lhs = sympy.latex(self.lhs)
        if self.relation == ">0":
            return f"{lhs} > 0"
        if self.relation == "<0":
            return f"{lhs} < 0"
        symbol = "=" if self.relation == "==" else r"\neq"
        return f"{lhs} {symbol} {sympy.latex(self.rhs)}"

    def text(self) -> str:
        """The step's expressions in SymPy's plain-text form."""
        if self.relation in (">0", "<0"):
            return f"{sympy.sstr(self.lhs)} {self.relation[0]} 0"
        symbol = "=" if self.relation == "==" else "!="
        return f"{sympy.sstr(self.lhs)} {symbol} {sympy.sstr(self.rhs)}"


@dataclass(frozen=True)
class Derivation:
    """An ordered, titled list of :class:`Step` objects."""

    title: str
    steps: tuple[Step, ...]
    summary: str = ""

    def check(self) -> list[tuple[Step, bool]]:
        """Prove every step; returns ``(step, proven)`` pairs in order."""
        return [(step, step.check()) for step in self.steps]

    def proven(self) -> bool:
        return all(ok for _, ok in self.check())

    def text(self, *, with_latex: bool = True, results: list[bool] | None = None) -> str:
        """Readable step-by-step text (with each step's LaTeX when asked)."""
        lines = [self.title, "=" * len(self.title)]
        if self.summary:
            lines += [self.summary, ""]
        for number, step in enumerate(self.steps, start=1):
            status = ""
            if results is not None:
                status = "  [proven]" if results[number - 1] else "  [NOT PROVEN]"
            lines.append(f"{number}. {step.statement}{status}")
            lines.append(f"     {step.text()}")
            if with_latex:
                lines.append(f"     LaTeX: {step.latex()}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The derivation as Markdown with display math (for the docs site)."""
        lines = [f"## {self.title}", ""]
        if self.summary:
            lines += [self.summary, ""]
        for number, step in enumerate(self.steps, start=1):
            lines += [f"{number}. {step.statement}", "", "    $$", f"    {step.latex()}", "    $$", ""]
        return "\n".join(lines)


def print_derivations(*derivations: Derivation, with_latex: bool = True) -> int:
    """Print each derivation step by step with its proof status; return an exit status.

    The derivation scripts in ``derivations/`` end with
    ``sys.exit(print_derivations(...))``: 0 when every step is proven.
    """
    failures = 0
    for derivation in derivations:
        results = [ok for _, ok in derivation.check()]
        failures += results.count(False)
        print(derivation.text(with_latex=with_latex, results=results))
        print()
    total = sum(len(d.steps) for d in derivations)
    print(f"{total - failures} of {total} steps proven exactly" + ("" if not failures else f"; {failures} NOT proven"))
    return 1 if failures else 0
