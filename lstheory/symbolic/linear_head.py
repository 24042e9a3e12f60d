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

from lstheory.symbolic.derivation import Derivation, Notation, Step

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
    """Explicit symbolic entries of a linear head over ``N`` rows, numbered from 1: ``W (K, H)``, ``h (N, H)``,
    ``beta``, ``omega`` (positive), upstream gradients ``g``, labels ``y_n = ((n - 1) mod K) + 1``, and the
    logits as symbols ``z_nc`` with their values ``W_c . h_n + beta_c`` (substituted by :meth:`substitute`)."""

    def __init__(self, num_classes: int, hidden_size: int, num_rows: int):
        self.k, self.n = num_classes, num_rows

        def entries(name, rows, cols, **assumptions):
            return sympy.Matrix(rows, cols, lambda i, j: sympy.Symbol(f"{name}_{i + 1}{j + 1}", **assumptions))

        def vector(name, size, **assumptions):
            return sympy.Matrix([sympy.Symbol(f"{name}_{i + 1}", **assumptions) for i in range(size)])

        self.W, self.h = entries("W", num_classes, hidden_size, real=True), entries("h", num_rows, hidden_size, real=True)
        self.beta, self.omega = vector("beta", num_classes, real=True), vector("omega", num_classes, positive=True)
        self.g = list(vector("g", num_rows, real=True))
        self.labels = [n % num_classes for n in range(num_rows)]  # 0-based positions of y_n
        self.z = entries("z", num_rows, num_classes, real=True)
        values = self.h * self.W.T + sympy.ones(num_rows, 1) * self.beta.T
        self.values = {self.z[n, c]: values[n, c] for n in range(num_rows) for c in range(num_classes)}
        self.exp_sums = [sum(sympy.exp(z) for z in self.z[n, :]) for n in range(num_rows)]
        self.weight_total = sum(self.omega)  # Omega
        self.class_sum_classifier = self.W.T * self.omega  # V = sum_c omega_c W_c, (H, 1)
        self.class_sum_bias = (self.omega.T * self.beta)[0]  # u = sum_c omega_c beta_c
        self.upstream_features = sum((self.g[n] * self.h[n, :] for n in range(num_rows)),
                                     sympy.zeros(1, hidden_size))  # G = sum_n g_n h_n, (1, H)

    def substitute(self, expression: sympy.Basic) -> sympy.Basic:
        """The logits' values substituted, then derivatives evaluated (valid: ``z`` is defined as ``W h + beta``)."""
        return expression.xreplace(self.values).doit()

    def lse(self, n: int) -> sympy.Expr:
        return sympy.log(self.exp_sums[n])

    def softmax(self, n: int) -> sympy.Matrix:
        return self.z[n, :].T.applyfunc(sympy.exp) / self.exp_sums[n]

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
        return A * self.omega[self.labels[n]] + B * self.weight_total

    def dense_logit_gradient(self, n: int) -> sympy.Matrix:
        """``T q - a omega_y e_y`` (a column): dloss/dz without the smoothing term's ``- b omega``."""
        one_hot = sympy.Matrix(self.k, 1, lambda c, _: int(c == self.labels[n]))
        return self.total_mass(n) * self.softmax(n) - A * self.omega[self.labels[n]] * one_hot

    def notation(self) -> tuple[Notation, ...]:
        """Display rules: lse_n, q_nc, S_n, T_n, Omega, V_j, u, G_j (longest expressions first)."""
        rows, classes = range(self.n), range(self.k)
        rules = [Notation(self.total_mass(n), sympy.Symbol(f"T_{n + 1}"), "T_n = a omega_(y_n) + b Omega")
                 for n in rows]
        rules += [Notation(self.lse(n), sympy.Symbol(f"lse_{n + 1}"), "lse_n = log S_n") for n in rows]
        rules += [Notation(sympy.exp(self.z[n, c]) / self.exp_sums[n], sympy.Symbol(f"q_{n + 1}{c + 1}"),
                           "q_nc = softmax(z_n)_c = exp(z_nc)/S_n") for n in rows for c in classes]
        rules += [Notation(self.exp_sums[n], sympy.Symbol(f"S_{n + 1}", positive=True), "S_n = sum_c exp(z_nc)")
                  for n in rows]
        rules.append(Notation(self.weight_total, sympy.Symbol("Omega", positive=True), "Omega = sum_c omega_c"))
        rules += [Notation(v, sympy.Symbol(f"V_{j + 1}"), "V_j = sum_c omega_c W_cj (the classifier's class sum)")
                  for j, v in enumerate(self.class_sum_classifier)]
        rules.append(Notation(self.class_sum_bias, sympy.Symbol("u"), "u = sum_c omega_c beta_c"))
        rules += [Notation(v, sympy.Symbol(f"G_{j + 1}"), "G_j = sum_n g_n h_nj")
                  for j, v in enumerate(self.upstream_features)]
        return tuple(rules)


def _derivatives(expression: sympy.Expr, matrix: sympy.Matrix) -> sympy.Matrix:
    """Unevaluated ``d expression / d entry`` for each entry (evaluated by :meth:`_Head.substitute`)."""
    return matrix.applyfunc(lambda entry: sympy.Derivative(expression, entry))


def _loss_steps(head: _Head, size: str) -> tuple[Step, ...]:
    """The per-row loss, its class-sum form and its gradient in the logits (row 1)."""
    y, z = head.labels[0], head.z[0, :].T
    class_sum = (head.h[0, :] * head.class_sum_classifier)[0] + head.class_sum_bias
    one_hot = sympy.Matrix(head.k, 1, lambda c, _: int(c == y))
    return (
        Step(f"The same with explicit entries ({size}; z_1c = W_c . h_1 + beta_c substituted)",
             (head.omega.T * z)[0], class_sum, prepare=head.substitute),
        Step(f"The per-row loss a omega_y (lse - z_y) + b sum_c omega_c (lse - z_c), as implemented, is the "
             f"cross-entropy -sum_c t_c log softmax(z)_c against t_c = omega_c (a [c = y] + b) (K = {head.k}, y = 1)",
             head.loss(0), head.cross_entropy(0), name="loss_1"),
        Step("... and it equals T lse - a omega_y z_y - b (h . V + u): the smoothing term needs only the class sums "
             "V = sum_c omega_c W_c and u (z substituted)", head.loss(0),
             head.total_mass(0) * head.lse(0) - A * head.omega[y] * head.z[0, y] - B * class_sum,
             prepare=head.substitute, name="loss_1"),
        Step(f"Its gradient in the logits is T q_c - a omega_y [c = y] - b omega_c (K = {head.k})",
             z.applyfunc(lambda zc: sympy.diff(head.loss(0), zc)),
             head.dense_logit_gradient(0) - B * head.omega, name="dloss_1/dz_1"),
    )


def _gradient_steps(head: _Head) -> tuple[Step, ...]:
    """The smoothing term's rank-one gradients, then every gradient of ``sum_n g_n loss_n``."""
    smoothing = sum(head.g[n] * B * (head.z[n, :] * head.omega)[0] for n in range(head.n))
    total = sum(head.g[n] * head.loss(n) for n in range(head.n))
    dense = [head.g[n] * head.dense_logit_gradient(n) for n in range(head.n)]  # g_n (T_n q_n - a omega_y e_y)
    rows = f"N = {head.n} rows with upstream gradients g_n"
    return (
        Step(f"Over {rows}, the smoothing term b sum_n g_n sum_c omega_c z_nc has the classifier gradient "
             "b omega G^T, G = sum_n g_n h_n: an outer product, rank one (z substituted, then differentiated)",
             _derivatives(smoothing, head.W), B * head.omega * head.upstream_features, prepare=head.substitute,
             name="d(smoothing)/dW"),
        Step("... the feature gradient b g_n V for row n: the same vector V = sum_c omega_c W_c for every row",
             _derivatives(smoothing, head.h), B * sympy.Matrix(head.g) * head.class_sum_classifier.T,
             prepare=head.substitute, name="d(smoothing)/dh"),
        Step("... and the bias gradient b omega sum_n g_n", _derivatives(smoothing, head.beta),
             B * sum(head.g) * head.omega, prepare=head.substitute, name="d(smoothing)/dbeta"),
        Step("The classifier gradient of L = sum_n g_n loss_n is sum_n g_n (T_n q_n - a omega_(y_n) e_(y_n)) h_n^T "
             "minus that rank-one part: what the fused loss accumulates chunk by chunk",
             _derivatives(total, head.W),
             sum((d * head.h[n, :] for n, d in enumerate(dense)), sympy.zeros(*head.W.shape))
             - B * head.omega * head.upstream_features, prepare=head.substitute, name="dL/dW"),
        Step("Its feature gradient is g_n (T_n q_n - a omega_(y_n) e_(y_n))^T W - b g_n V for row n",
             _derivatives(total, head.h),
             sympy.Matrix.vstack(*(d.T * head.W for d in dense))
             - B * sympy.Matrix(head.g) * head.class_sum_classifier.T, prepare=head.substitute, name="dL/dh"),
        Step("Its bias gradient is sum_n g_n (T_n q_n - a omega_(y_n) e_(y_n)) - b omega sum_n g_n",
             _derivatives(total, head.beta), sum(dense, sympy.zeros(head.k, 1)) - B * sum(head.g) * head.omega,
             prepare=head.substitute, name="dL/dbeta"),
    )


@lru_cache(maxsize=None)
def linear_head_smoothing(num_classes: int = 3, hidden_size: int = 2, num_rows: int = 2) -> Derivation:
    """The class-sum identity (symbolic ``K``, ``H``), then the loss and its gradients for explicit sizes.

    Parameters
    ----------
    num_classes, hidden_size, num_rows : int
        The explicit sizes of steps 2 to 11 (``K >= 2``; each at least 1).

    Returns
    -------
    Derivation
        Eleven steps, each proven exactly (:meth:`Derivation.proven`).

    Examples
    --------
    >>> derivation = linear_head_smoothing()
    >>> len(derivation.steps), derivation.steps[0].check()
    (11, True)
    """
    head = _Head(num_classes, hidden_size, num_rows)
    size = f"K = {num_classes}, H = {hidden_size}"
    steps = (_class_sum_symbolic_size(), *_loss_steps(head, size), *_gradient_steps(head))
    return Derivation(
        title="The smoothing term of a linear head: class sums and a rank-one gradient",
        steps=steps,
        summary=f"Why a fused linear + label-smoothed loss needs no (N, K) tensor for its smoothing term. Steps 2 "
        f"to 11 use explicit entries: {size}, N = {num_rows} rows, row n labelled y_n = n (mod K).",
        notation=head.notation(),
    )
