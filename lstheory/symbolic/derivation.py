"""Derivations as structured, exactly checked steps.

A :class:`Step` states one fact in words, holds the SymPy expressions it is
about and the relation between them, and proves it exactly: an identity
``lhs == rhs`` is proven when ``simplify(lhs - rhs)`` is exactly zero (entry
by entry for matrices); ``lhs != rhs`` (a counterexample) when the simplified
difference is provably non-zero; ``lhs > 0`` when SymPy's assumptions system
decides the sign.  No step is ever checked by sampling numbers.

A :class:`Derivation` is an ordered list of steps with a title.  It prints
as short numbered text (each step's statement, then its formula in a
simplified form), as LaTeX on request, and as Markdown with MathML for the
docs site; the derivation scripts in ``derivations/`` and the docs page print
the same steps.  A derivation's :class:`Notation` entries are display rules:
a long sub-expression is shown as a short symbol (``exp(z_1)/S`` as
``q_1``), or a helper symbol of a proof as the reader's expression (``n`` as
``K - 2``), and each rule's meaning is printed once, so every symbol on the
page is explained.  Display rules never touch what is proven.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import textwrap
from typing import Callable, Literal, Sequence

import sympy
from sympy.printing.mathml import mathml
from sympy.printing.str import StrPrinter

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
class Notation:
    """A display rule: ``expression`` is shown as ``shown_as``; ``meaning`` says so in words.

    ``Notation(exp(z_1) / S, q_1, "q_i = softmax(z)_i = exp(z_i)/S")``
    abbreviates; ``Notation(n, K - 2, "the proof writes K = n + 2, n >= 0,
    so that K >= 2 is visible to SymPy")`` shows a proof's helper symbol in
    the reader's terms.  Rules only change how formulas are printed.
    """

    expression: sympy.Basic
    shown_as: sympy.Basic
    meaning: str


def listed(term: str, count: int) -> str:
    """``term`` (with ``{i}``) summed over ``i = 1..count``: every term for few, ``first + ... + last`` for many."""
    terms = [term.format(i=i) for i in range(1, count + 1)]
    return " + ".join(terms) if count <= 3 else f"{terms[0]} + ... + {terms[-1]}"


def _indexed_symbols(steps: Sequence["Step"]) -> dict[str, dict[int, sympy.Symbol]]:
    """Symbols named ``x_1, x_2, ...`` in the steps, by base name and index."""
    groups: dict[str, dict[int, sympy.Symbol]] = {}
    for step in steps:
        for symbol in step.lhs.free_symbols | step.rhs.free_symbols:
            base, _, index = symbol.name.rpartition("_")
            if base and index.isdigit():
                groups.setdefault(base, {})[int(index)] = symbol
    return groups


def automatic_notation(steps: Sequence["Step"]) -> tuple[Notation, ...]:
    """The display rules every derivation with concrete K gets.

    Logits ``z_1..z_K`` make ``exp(z_i)/S`` show as ``q_i`` (softmax) and
    their sum of exponentials as ``S``; a normalised vector
    ``x_1, ..., x_{K-1}, 1 - x_1 - ... - x_{K-1}`` shows its last entry as ``x_K``.
    """
    groups = _indexed_symbols(steps)
    rules: list[Notation] = []
    logits = [groups.get("z", {}).get(i) for i in range(1, len(groups.get("z", {})) + 1)]
    if len(logits) >= 2 and None not in logits:
        total = sum(sympy.exp(z) for z in logits)
        rules += [Notation(sympy.exp(z) / total, sympy.Symbol(f"q_{i}"), "q_i = softmax(z)_i = exp(z_i)/S")
                  for i, z in enumerate(logits, start=1)]
        rules.append(Notation(total, sympy.Symbol("S", positive=True), "S = " + listed("exp(z_{i})", len(logits))))
    for base, members in sorted(groups.items()):
        count = len(members)
        if base == "z" or sorted(members) != list(range(1, count + 1)) or (logits[:1] and count + 1 != len(logits)):
            continue
        last = 1 - sum(members.values())
        if not any(last in sympy.preorder_traversal(side) for step in steps for side in (step.lhs, step.rhs)):
            continue  # not a normalised vector: its last entry is never written as 1 - (the others)
        rules.append(Notation(last, sympy.Symbol(f"{base}_{count + 1}", positive=True),
                              f"{base}_{count + 1} = 1 - ({listed(base + '_{i}', count)})"))
    return tuple(rule for rule in rules if _is_used(rule, steps))


def _is_used(rule: Notation, steps: Sequence["Step"]) -> bool:
    return any(_shown(side, [rule]) != side for step in steps for side in (step.lhs, step.rhs))


def _shown(expression: sympy.Basic, notation: Sequence[Notation]) -> sympy.Basic:
    """``expression`` after the display rules (each also applied to its reciprocal)."""
    for rule in notation:
        if rule.expression.is_Symbol:
            expression = expression.subs(rule.expression, rule.shown_as)
        else:
            expression = expression.subs(rule.expression, rule.shown_as).subs(1 / rule.expression, 1 / rule.shown_as)
    return expression


class _PlainPrinter(StrPrinter):
    """SymPy's str form, shortened for reading: ``eps``, ``e``, ``^``, vectors as ``[a, b]``, sums as ``sum_(i=1..K)``."""

    printmethod = "_lstheory_plain"  # not the objects' own _sympystr (Indexed prints q[i] with it)

    def _print_Symbol(self, expr):
        return expr.name.replace("epsilon", "eps")

    def _print_Exp1(self, expr):
        return "e"

    def _print_MatrixBase(self, expr):
        if expr.cols == 1:
            return "[" + ", ".join(self._print(entry) for entry in expr) + "]"
        return "[" + ", ".join("[" + ", ".join(self._print(e) for e in expr.row(i)) + "]" for i in range(expr.rows)) + "]"

    _print_ImmutableDenseMatrix = _print_MutableDenseMatrix = _print_MatrixBase

    def _print_Indexed(self, expr):
        return f"{self._print(expr.base)}_{'_'.join(self._print(i) for i in expr.indices)}"

    def _print_IndexedBase(self, expr):
        return self._print(expr.label)

    def _print_KroneckerDelta(self, expr):
        return f"delta_{self._print(expr.args[0])}{self._print(expr.args[1])}"

    def _print_Sum(self, expr):
        limits = " ".join(f"sum_({self._print(i)}={self._print(lo)}..{self._print(hi)})" for i, lo, hi in expr.limits)
        return f"{limits} ({self._print(expr.function)})"


def plain(expression: sympy.Basic) -> str:
    """``expression`` as short plain text: ``-p_1 log(q_1) + e^g``-style, one line."""
    text = _PlainPrinter({"order": None}).doprint(expression)
    return text.replace("**", "^").replace("*", " ")


def _is_zero_matrix(expression: sympy.Basic) -> bool:
    return isinstance(expression, sympy.MatrixBase) and all(entry == 0 for entry in expression)


@dataclass(frozen=True)
class Step:
    """One exactly checkable statement of a derivation.

    ``relation`` is ``"=="`` (identity), ``"!="`` (the two sides differ: a
    counterexample), ``">0"`` or ``"<0"`` (the sign of ``lhs``; ``rhs`` is
    ignored).  ``prepare`` rewrites ``lhs - rhs`` before simplification (for
    instance :func:`sympy.expand_log` with ``force=True`` where every
    argument of a logarithm is known to be positive); the step's statement
    must say why that rewrite is valid.

    ``name`` (optional) is how the left-hand side is printed when its own
    expression is long and what it is matters more (``"dL/dz"`` for a
    gradient computed by SymPy); without it, both sides are printed.
    """

    statement: str
    lhs: sympy.Basic
    rhs: sympy.Basic = sympy.S.Zero
    relation: Relation = "=="
    prepare: Callable[[sympy.Basic], sympy.Basic] | None = field(default=None, compare=False)
    name: str = ""

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

    def sides(self, notation: Sequence[Notation] = ()) -> tuple[sympy.Basic | None, sympy.Basic]:
        """The two printed sides after the display rules; the left is ``None`` when :attr:`name` stands for it."""
        right = sympy.S.Zero if self.relation in (">0", "<0") else _shown(self.rhs, notation)
        if _is_zero_matrix(right):
            right = sympy.S.Zero
        if self.name:
            return None, right
        left = _shown(self.lhs, notation)
        if self.relation != "==" and not isinstance(left, sympy.MatrixBase):
            left = min((left, sympy.factor(left), sympy.simplify(left)), key=lambda e: len(plain(e)))
        return left, right

    def _symbol(self) -> str:
        return {"==": "=", "!=": "!=", ">0": ">", "<0": "<"}[self.relation]

    def formula(self, notation: Sequence[Notation] = ()) -> str:
        """The step's formula as one line of plain text; empty when it would only repeat itself (``1 = 1``)."""
        left, right = self.sides(notation)
        left_text = self.name or plain(left)
        if self.relation == "==" and not self.name and left_text == plain(right):
            return ""
        value = ""
        if self.relation == "!=" and not self.lhs.free_symbols and not isinstance(self.lhs, sympy.MatrixBase):
            value = f" = {float(sympy.N(self.lhs - self.rhs) + sympy.N(self.rhs)):.4g}"
        return f"{left_text}{value} {self._symbol()} {plain(right)}"

    def latex(self, notation: Sequence[Notation] = ()) -> str:
        """The step as one LaTeX formula (the same display rules)."""
        left, right = self.sides(notation)
        left_tex = rf"\text{{{self.name}}}" if self.name else sympy.latex(left)
        symbol = {"==": "=", "!=": r"\neq", ">0": ">", "<0": "<"}[self.relation]
        return f"{left_tex} {symbol} {sympy.latex(right)}"

    def mathml(self, notation: Sequence[Notation] = ()) -> str:
        """The step as a display-mode MathML element, for browsers to render without any script."""
        left, right = self.sides(notation)
        left_ml = f"<mtext>{self.name}</mtext>" if self.name else mathml(left, printer="presentation")
        symbol = {"==": "=", "!=": "&#8800;", ">0": "&gt;", "<0": "&lt;"}[self.relation]
        return (f'<math display="block"><mrow>{left_ml}<mo>{symbol}</mo>'
                f'{mathml(right, printer="presentation")}</mrow></math>')

    def text(self) -> str:
        """The step's expressions in SymPy's plain-text form, unabbreviated (what is proven)."""
        if self.relation in (">0", "<0"):
            return f"{sympy.sstr(self.lhs)} {self.relation[0]} 0"
        symbol = "=" if self.relation == "==" else "!="
        return f"{sympy.sstr(self.lhs)} {symbol} {sympy.sstr(self.rhs)}"


@dataclass(frozen=True)
class Derivation:
    """An ordered, titled list of :class:`Step` objects, with the display rules of its formulas."""

    title: str
    steps: tuple[Step, ...]
    summary: str = ""
    notation: tuple[Notation, ...] = ()

    def check(self) -> list[tuple[Step, bool]]:
        """Prove every step; returns ``(step, proven)`` pairs in order."""
        return [(step, step.check()) for step in self.steps]

    def proven(self) -> bool:
        return all(ok for _, ok in self.check())

    def display_rules(self) -> tuple[Notation, ...]:
        """:attr:`notation`, then the :func:`automatic_notation` of the steps."""
        return self.notation + tuple(rule for rule in automatic_notation(self.steps)
                                     if rule.expression not in {own.expression for own in self.notation})

    def notation_text(self) -> str:
        """Every display rule's meaning, once each, in order."""
        return "; ".join(dict.fromkeys(rule.meaning for rule in self.display_rules()))

    def text(self, *, with_latex: bool = False, results: list[bool] | None = None, width: int = 110) -> str:
        """Short numbered text: each step's statement, then its simplified formula (and LaTeX when asked)."""
        lines = [self.title, "=" * len(self.title)]
        if self.summary:
            lines += textwrap.wrap(self.summary, width)
        rules = self.display_rules()
        if rules:
            lines += textwrap.wrap("Notation: " + self.notation_text(), width, subsequent_indent="  ")
        for number, step in enumerate(self.steps, start=1):
            status = ""
            if results is not None:
                status = "  [proven]" if results[number - 1] else "  [NOT PROVEN]"
            lines += textwrap.wrap(f"{number}. {step.statement}{status}", width, subsequent_indent="   ")
            formula = step.formula(rules)
            if formula:
                lines.append(f"     {formula}")
            if with_latex:
                lines.append(f"     LaTeX: {step.latex(rules)}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The derivation as Markdown with MathML formulas (rendered by browsers, no script, no network)."""
        lines = [f"## {self.title}", ""]
        if self.summary:
            lines += [self.summary, ""]
        rules = self.display_rules()
        if rules:
            lines += [f"*Notation:* {self.notation_text()}.", ""]
        for number, step in enumerate(self.steps, start=1):
            lines += [f"{number}. {step.statement}", ""]
            if step.formula(rules):
                lines += [f"    {step.mathml(rules)}", ""]
        return "\n".join(lines)


def print_derivations(*derivations: Derivation, with_latex: bool = False) -> int:
    """Print each derivation step by step with its proof status; return an exit status.

    The derivation scripts in ``derivations/`` end with
    ``sys.exit(print_derivations(..., with_latex="--latex" in sys.argv))``:
    0 when every step is proven.
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
