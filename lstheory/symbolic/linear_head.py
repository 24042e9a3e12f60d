r"""The smoothing term of a linear head: the class sum of its logits, and its rank-one gradient.

For the logits ``z = W h + beta`` of a linear head (classifier ``W`` of shape
``(K, H)``, features ``h``, bias ``beta``) and class weights ``omega``, the
label-smoothed loss of one row with label ``y`` and coefficients ``(a, b)``
(:func:`lstheory.torch.smoothing_coefficients`) is::

    loss = a omega_y (lse - z_y) + b sum_c omega_c (lse - z_c),   lse = log sum_c exp z_c
         = T lse - a omega_y z_y - b (h . sum_c omega_c W_c + sum_c omega_c beta_c)
    T    = a omega_y + b sum_c omega_c

so its smoothing term needs only ``sum_c omega_c z_c``, which the linear head
gives from ``H + 1`` numbers computed once, and the smoothing term's gradient
with respect to ``W`` over a batch is the outer product
``b omega (sum_n g_n h_n)^T``: rank one.  This is what
:func:`lstheory.torch.linear_label_smoothed_cross_entropy` computes.

The class-sum identity is proven for symbolic ``K`` and ``H`` (exchanging two
finite sums) and, with explicit entries, for small sizes; the loss and its
gradients are proven with explicit symbolic entries (``K = 3`` classes,
``H = 2`` features, ``N = 2`` rows by default): SymPy differentiates the loss
and the difference to the stated gradient cancels exactly.

Reference: the logits' memory problem and chunked heads: Wijmans et al. 2024,
"Cut Your Losses in Large-Vocabulary Language Models", arXiv 2411.09009
(without label smoothing).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from lstheory.symbolic.derivation import Derivation, Step

__all__ = ["linear_head_smoothing"]

K = sympy.Symbol("K", integer=True, positive=True)
H = sympy.Symbol("H", integer=True, positive=True)
A = sympy.Symbol("a", real=True)
B = sympy.Symbol("b", real=True)
_C = sympy.Symbol("c", integer=True)
_J = sympy.Symbol("j", integer=True)
_W = sympy.IndexedBase("W")
_H = sympy.IndexedBase("h")
_BETA = sympy.IndexedBase("beta")
_OMEGA = sympy.IndexedBase("omega")


def merge_finite_sums(expression: sympy.Basic) -> sympy.Basic:
    """Rewrite nested finite sums as one sum over all their indices, limits in a fixed order.

    ``Sum(f * Sum(g, (j, 1, H)), (c, 1, K))`` becomes ``Sum(f * g, (c, 1, K), (j, 1, H))`` when ``f``
    does not involve ``j`` and no bound involves a summation index: linearity of a finite sum, and
    exchanging two finite sums with constant bounds.  Other terms are left as they are.
    """

    def merged(term: sympy.Basic) -> sympy.Basic:
        if not isinstance(term, sympy.Sum):
            return term
        function, limits = term.function, list(term.limits)
        inner = [f for f in sympy.Mul.make_args(function) if isinstance(f, sympy.Sum)]
        if len(inner) == 1:
            indices = {limit[0] for limit in limits}
            inner_sum = merged(inner[0])
            constant_bounds = all(not (sympy.Tuple(*l[1:]).free_symbols & indices) for l in inner_sum.limits)
            outer_factor = function / inner[0]
            if constant_bounds and not (outer_factor.free_symbols & {l[0] for l in inner_sum.limits}):
                function, limits = outer_factor * inner_sum.function, limits + list(inner_sum.limits)
        return sympy.Sum(function, *sorted(limits, key=lambda limit: limit[0].name))

    terms = (term.as_coeff_Mul() for term in sympy.Add.make_args(sympy.expand(expression)))
    return sympy.Add(*(coefficient * merged(rest) for coefficient, rest in terms))


def _class_sum_symbolic_size() -> Step:
    logits = sympy.Sum(_W[_C, _J] * _H[_J], (_J, 1, H)) + _BETA[_C]
    lhs = sympy.Sum(_OMEGA[_C] * logits, (_C, 1, K))
    rhs = sympy.Sum(_H[_J] * sympy.Sum(_OMEGA[_C] * _W[_C, _J], (_C, 1, K)), (_J, 1, H)) + sympy.Sum(
        _OMEGA[_C] * _BETA[_C], (_C, 1, K))
    return Step(
        "For every K and H, the weighted class sum of the logits z_c = sum_j W_cj h_j + beta_c of a linear head is "
        "h . (sum_c omega_c W_c) + sum_c omega_c beta_c (linearity and the exchange of two finite sums with "
        "constant bounds: the rewrite merges nested sums into one sum over both indices)",
        lhs, rhs, prepare=merge_finite_sums)


class _Head:
    """Explicit symbolic entries of a linear head over ``N`` rows: ``W (K, H)``, ``h (N, H)``, ``beta``,
    ``omega`` (positive), upstream gradients ``g``, labels ``y_n = n mod K``, and the logits as symbols
    ``z_nc`` with their values ``W_c . h_n + beta_c`` (substituted by :meth:`substitute`)."""

    def __init__(self, num_classes: int, hidden_size: int, num_rows: int):
        self.k, self.n = num_classes, num_rows
        self.W = sympy.Matrix(num_classes, hidden_size, lambda c, j: sympy.Symbol(f"W_{c}{j}", real=True))
        self.h = sympy.Matrix(num_rows, hidden_size, lambda n, j: sympy.Symbol(f"h_{n}{j}", real=True))
        self.beta = sympy.Matrix(num_classes, 1, lambda c, _: sympy.Symbol(f"beta_{c}", real=True))
        self.omega = sympy.Matrix(num_classes, 1, lambda c, _: sympy.Symbol(f"omega_{c}", positive=True))
        self.g = [sympy.Symbol(f"g_{n}", real=True) for n in range(num_rows)]
        self.labels = [n % num_classes for n in range(num_rows)]
        self.z = sympy.Matrix(num_rows, num_classes, lambda n, c: sympy.Symbol(f"z_{n}{c}", real=True))
        values = self.h * self.W.T + sympy.ones(num_rows, 1) * self.beta.T
        self.values = {self.z[n, c]: values[n, c] for n in range(num_rows) for c in range(num_classes)}

    def substitute(self, expression: sympy.Basic) -> sympy.Basic:
        """The logits' values substituted, then derivatives evaluated (valid: ``z`` is defined as ``W h + beta``)."""
        return expression.xreplace(self.values).doit()

    def lse(self, n: int) -> sympy.Expr:
        return sympy.log(sum(sympy.exp(z) for z in self.z[n, :]))

    def loss(self, n: int) -> sympy.Expr:
        """``a omega_y (lse - z_y) + b sum_c omega_c (lse - z_c)``: the per-row loss as implemented."""
        lse, y = self.lse(n), self.labels[n]
        return A * self.omega[y] * (lse - self.z[n, y]) + B * sum(
            self.omega[c] * (lse - self.z[n, c]) for c in range(self.k))

    def cross_entropy(self, n: int) -> sympy.Expr:
        """``-sum_c t_c log softmax(z)_c`` with ``t_c = omega_c (a [c = y] + b)``: the definition."""
        lse, y = self.lse(n), self.labels[n]
        return -sum(self.omega[c] * (A * int(c == y) + B) * (self.z[n, c] - lse) for c in range(self.k))

    def total_mass(self, n: int) -> sympy.Expr:
        return A * self.omega[self.labels[n]] + B * sum(self.omega)

    def class_sums(self) -> tuple[sympy.Matrix, sympy.Expr]:
        """``sum_c omega_c W_c`` (a column of ``H``) and ``sum_c omega_c beta_c``."""
        return self.W.T * self.omega, (self.omega.T * self.beta)[0]

    def upstream_features(self) -> sympy.Matrix:
        """``sum_n g_n h_n`` (a row of ``H``)."""
        return sum((self.g[n] * self.h[n, :] for n in range(self.n)), sympy.zeros(1, self.h.shape[1]))

    def dense_logit_gradient(self, n: int) -> sympy.Matrix:
        """``T q - a omega_y e_y`` (a column): dloss/dz without the smoothing term's ``- b omega``."""
        exps = self.z[n, :].T.applyfunc(sympy.exp)
        one_hot = sympy.Matrix(self.k, 1, lambda c, _: int(c == self.labels[n]))
        return self.total_mass(n) * exps / sum(exps) - A * self.omega[self.labels[n]] * one_hot


def _derivatives(expression: sympy.Expr, matrix: sympy.Matrix) -> sympy.Matrix:
    """Unevaluated ``d expression / d entry`` for each entry (evaluated by :meth:`_Head.substitute`)."""
    return matrix.applyfunc(lambda entry: sympy.Derivative(expression, entry))


@lru_cache(maxsize=None)
def linear_head_smoothing(num_classes: int = 3, hidden_size: int = 2, num_rows: int = 2) -> Derivation:
    """The class-sum identity (symbolic ``K``, ``H``), then the loss and its gradients for explicit sizes.

    Parameters
    ----------
    num_classes, hidden_size, num_rows : int
        The explicit sizes of steps 2 to 7 (``K >= 2``; each at least 1).

    Returns
    -------
    Derivation
        Seven steps, each proven exactly (:meth:`Derivation.proven`).

    Examples
    --------
    >>> derivation = linear_head_smoothing()
    >>> len(derivation.steps), derivation.steps[0].check()
    (7, True)
    """
    head = _Head(num_classes, hidden_size, num_rows)
    class_sum_classifier, class_sum_bias = head.class_sums()
    y0, z0 = head.labels[0], head.z[0, :].T
    size = f"K = {num_classes}, H = {hidden_size}"
    smoothing = sum(head.g[n] * B * (head.z[n, :] * head.omega)[0] for n in range(num_rows))  # sum_n g_n b sum_c w_c z_nc
    total = sum(head.g[n] * head.loss(n) for n in range(num_rows))
    one_hot = sympy.Matrix(num_classes, 1, lambda c, _: int(c == y0))
    gradients = (head.W, head.h, head.beta)
    steps = (
        _class_sum_symbolic_size(),
        Step(f"The same with explicit entries ({size}): sum_c omega_c z_c = h . sum_c omega_c W_c + sum_c omega_c "
             "beta_c (z_c = W_c . h + beta_c substituted)", (head.omega.T * z0)[0],
             (head.h[0, :] * class_sum_classifier)[0] + class_sum_bias, prepare=head.substitute),
        Step(f"The per-row loss a omega_y (lse - z_y) + b sum_c omega_c (lse - z_c) is the cross-entropy "
             f"-sum_c t_c log softmax(z)_c against t_c = omega_c (a [c = y] + b) (K = {num_classes})",
             head.loss(0), head.cross_entropy(0)),
        Step("... and equals T lse - a omega_y z_y - b (h . sum_c omega_c W_c + sum_c omega_c beta_c), "
             "T = a omega_y + b sum_c omega_c: the smoothing term needs only the class sums (z substituted)",
             head.loss(0), head.total_mass(0) * head.lse(0) - A * head.omega[y0] * head.z[0, y0]
             - B * ((head.h[0, :] * class_sum_classifier)[0] + class_sum_bias), prepare=head.substitute),
        Step(f"Its gradient in the logits is dloss/dz_c = T q_c - a omega_y [c = y] - b omega_c (K = {num_classes})",
             z0.applyfunc(lambda z: sympy.diff(head.loss(0), z)), head.dense_logit_gradient(0) - B * head.omega),
        Step(f"Over N = {num_rows} rows with upstream gradients g_n, the smoothing term's gradient in the classifier "
             "is the outer product b omega (sum_n g_n h_n)^T (rank one); in h_n it is b g_n sum_c omega_c W_c, in "
             "the bias b omega sum_n g_n (z substituted, then differentiated)",
             sympy.Matrix.vstack(*(_derivatives(smoothing, m).reshape(len(m), 1) for m in gradients)),
             sympy.Matrix.vstack((B * head.omega * head.upstream_features()).reshape(len(head.W), 1),
                                 *(B * head.g[n] * class_sum_classifier for n in range(num_rows)),
                                 B * sum(head.g) * head.omega), prepare=head.substitute),
        Step(f"The classifier gradient of sum_n g_n loss_n is sum_n g_n (T_n q_n - a omega_(y_n) e_(y_n)) h_n^T minus "
             f"that rank-one part ({size}, N = {num_rows}; z substituted, then differentiated): what the fused loss "
             "accumulates chunk by chunk",
             _derivatives(total, head.W),
             sum((head.g[n] * head.dense_logit_gradient(n) * head.h[n, :] for n in range(num_rows)),
                 sympy.zeros(num_classes, hidden_size)) - B * head.omega * head.upstream_features(),
             prepare=head.substitute),
    )
    return Derivation(
        title="The smoothing term of a linear head: class sums and a rank-one gradient",
        steps=steps,
        summary="Why a fused linear + label-smoothed loss needs no (N, K) tensor for its smoothing term.",
    )
