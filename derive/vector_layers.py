"""Vector layers: each output reads the whole row, so the Jacobian is no longer diagonal.

A layer here is written as result_i = h(input_i, S) with S = sum_j k(input_j), a reduction
over one sample's features (dim 1; rows are samples). Softmax is h = exp(input)/S, log_softmax
h = input - log(S), both with k = exp. The definition is the componentwise one,
result_i = exp(z_i) / sum_j exp(z_j); ``jacobian(n)`` differentiates exactly that.

The backward never builds the n x n Jacobian. The chain rule through S gives, for an upstream
row ``grad``,

    (grad^T J)_j = grad_j dh/dinput(z_j, S) + k'(z_j) * sum_i grad_i dh/dS(z_i, S)

a "row-sum form": elementwise terms and one RowSum. SymPy differentiates h and k; the form is
then written in terms of ``result`` (solving result = h(input, S) for input), after which S
cancels: softmax's VJP is result * (grad - RowSum(grad * result)), log_softmax's
grad - exp(result) * RowSum(grad), the formulas of PyTorch's derivatives.yaml.
``vjp_equals_jacobian(n)`` proves the printed form equal to grad^T J at size n, and
``stable_forward_equal(n)`` proves the printed forward (the row max subtracted, log_softmax as
z - logsumexp) equal to the definition; tests/test_vector_layers.py runs both at sizes 1..6.
"""
from dataclasses import dataclass
from functools import cached_property
from typing import Tuple

import sympy as sp

from derive import rewrites
from derive.functions import RowMax, RowSum
from derive.rewrites import Rewrite
from derive.symbols import grad, input, result, shifted

S = sp.Symbol("S", positive=True)  # sum_j k(input_j): one value per row
# The named intermediates a printed forward may use.
DEFINITIONS = {shifted: input - RowMax(input)}


class SubtractRowMax(Rewrite):
    """input -> shifted = input - rowmax(input) in the forward, so that exp cannot overflow.

    The largest argument of exp is then 0 and the row sum is at least 1, so its log is finite.
    Equal to the definition for every shift m of a row, since exp(z - m) = exp(z) exp(-m) and
    h(z - m, exp(-m) S) = h(z, S) for softmax and log_softmax; the row max is one such m.
    ``VectorLayer.stable_forward_equal`` proves it for each layer.
    """

    name = "subtract_row_max"

    def __call__(self, expr, layer=None):
        return expr.xreplace({input: shifted})

    def note(self, layer=None):
        return "input -> shifted = input - rowmax(input): exp cannot overflow and the row sum is " \
               ">= 1; equal to the definition for any shift of a row (proved for sizes 1..6)."


class RowInTermsOfResult(Rewrite):
    """A row-sum VJP in input and S -> the same in result alone: input = h^-1(result, S)
    substituted, then S moves out of each RowSum and cancels. The backward then reads the
    forward's output only, as PyTorch's softmax and log_softmax backwards do."""

    name = "row_in_terms_of_result"
    in_input = False

    def __call__(self, expr, layer=None):
        # check/simplify off: a candidate is accepted only if S and input cancel below,
        # which is its check (solve's own checks cost most of a cold `make derive`).
        for inverse in sp.solve(result - layer.term, input, check=False, simplify=False):
            candidate = expr.replace(
                lambda e: e.has(input), lambda e: sp.expand_log(e.subs(input, inverse), force=True))
            # RowSum re-evaluates on rebuild: S moves out of it and cancels.
            candidate = sp.factor(sp.expand(candidate))
            if not candidate.free_symbols & {input, S}:
                return candidate
        raise ValueError("{}: cannot write the VJP {} in terms of result".format(layer.name, expr))

    def note(self, layer=None):
        return "the VJP in terms of result: input = h^-1(result, S) substituted, S cancels; the " \
               "backward reads the forward's output only, as PyTorch's."


SUBTRACT_ROW_MAX = SubtractRowMax()
ROW_IN_TERMS_OF_RESULT = RowInTermsOfResult()


@dataclass(frozen=True)
class VectorLayer:
    name: str
    term: sp.Expr  # h(input, S): one output, given the row's reduction S
    reduced: sp.Expr  # k(input): S = RowSum(k(input))
    latex: str
    reference: str  # PyTorch's own spelling, for the checks against autograd
    jacobian_closed_form: str  # the n x n Jacobian, numerator layout, in s = softmax(z)
    forward_rewrites: Tuple[Rewrite, ...] = (SUBTRACT_ROW_MAX,)
    rewrites: Tuple[Rewrite, ...] = (ROW_IN_TERMS_OF_RESULT,)  # on the row-sum VJP

    @cached_property
    def forward(self):
        """The definition, as a batched expression: h(input, RowSum(k(input)))."""
        return self.term.subs(S, RowSum(self.reduced))

    @cached_property
    def stable_forward(self):
        """The forward as printed: the definition after ``forward_rewrites``, possibly in the
        named intermediates of ``DEFINITIONS``."""
        return rewrites.apply(self.forward, self.forward_rewrites, self)

    @cached_property
    def definitions(self):
        """The intermediates ``stable_forward`` uses, (symbol, expression) in order."""
        return tuple((s, d) for s, d in DEFINITIONS.items() if s in self.stable_forward.free_symbols)

    def component(self, z, i):
        """result_i at the component symbols z, from the definition."""
        total = sum(self.reduced.subs(input, zj) for zj in z)
        return self.term.subs(input, z[i]).subs(S, total)

    def jacobian(self, n):
        """The n x n Jacobian in numerator layout (a row per output), componentwise from the
        definition, at symbols z_1..z_n; returns (J, z)."""
        z = sp.Matrix(sp.symbols("z_1:{}".format(n + 1), real=True))
        outputs = sp.Matrix([self.component(list(z), i) for i in range(n)])
        return outputs.jacobian(z), z

    def jacobian_in_shares(self, n):
        """``jacobian(n)`` written in s_k = k(z_k)/S (softmax's probabilities for k = exp):
        each entry simplified after k(z_k) -> s_k S and sum_k k(z_k) -> S. Returns (J, s)."""
        jacobian, z = self.jacobian(n)
        shares = sp.symbols("s_1:{}".format(n + 1), positive=True)
        total = sum(self.reduced.subs(input, zk) for zk in z)
        in_shares = jacobian.subs(total, S).subs({self.reduced.subs(input, zk): sk * S for zk, sk in zip(z, shares)})
        return in_shares.applyfunc(sp.simplify), shares

    @cached_property
    def pieces(self):
        """SymPy's derivatives the row-sum form is made of: dh/dinput, dh/dS, k'."""
        return {"dh/dinput": sp.diff(self.term, input), "dh/dS": sp.diff(self.term, S),
                "dk/dinput": sp.diff(self.reduced, input)}

    @cached_property
    def raw_vjp(self):
        """grad * dh/dinput + k'(input) * RowSum(grad * dh/dS), in input and S."""
        p = self.pieces
        return grad * p["dh/dinput"] + p["dk/dinput"] * RowSum(grad * p["dh/dS"])

    @cached_property
    def stages(self):
        """[(rewrite, VJP after it)] for each rewrite of ``rewrites``, in order."""
        return rewrites.stages(self.raw_vjp, self.rewrites, self)

    @cached_property
    def vjp(self):
        """The VJP the backward evaluates: ``raw_vjp`` after the row's rewrites (in terms of
        result, S cancelled)."""
        return self.stages[-1][1] if self.stages else self.raw_vjp

    @property
    def saves(self):
        return tuple(s.name for s in (input, result) if s in self.vjp.free_symbols)

    # -- proofs ------------------------------------------------------------------------------
    def at_components(self, expr, z, g, r):
        """A row expression at component j, for each j: element symbols -> components,
        RowSum(e) -> the explicit sum over the row."""
        n = len(z)

        def at(e, j):
            e = e.replace(RowSum, lambda a: sum(at(a, i) for i in range(n)))
            e = e.replace(RowMax, lambda a: sp.Max(*[at(a, i) for i in range(n)]))
            return e.xreplace({input: z[j], grad: g[j], result: r[j]})
        return [at(expr, j) for j in range(n)]

    def vjp_equals_jacobian(self, n):
        """The printed VJP equals grad^T J (J componentwise from the definition) at size n,
        symbolically. exp(z_i) becomes a positive symbol e_i, so both sides are rational
        functions and ``cancel`` decides equality."""
        jacobian, z = self.jacobian(n)
        g = sp.symbols("g_1:{}".format(n + 1), real=True)
        expected = sp.Matrix([g]) * jacobian
        r = [self.component(list(z), i) for i in range(n)]
        got = self.at_components(self.vjp, list(z), g, r)
        e = sp.symbols("e_1:{}".format(n + 1), positive=True)
        as_e = {sp.exp(zi): ei for zi, ei in zip(z, e)}

        def rational(x):
            x = sp.expand_log(sp.powsimp(sp.expand(x)), force=True)
            return x.subs(as_e)
        return all(sp.cancel(rational(got[j]) - rational(expected[j])) == 0 for j in range(n))

    def stable_forward_equal(self, n):
        """The printed (stable) forward equals the definition at size n, for any shift m:
        every RowMax is replaced by a free symbol m, so the proof covers the row max and
        every other value."""
        z = sp.symbols("z_1:{}".format(n + 1), real=True)
        m = sp.Symbol("m", real=True)
        printed = self.stable_forward.xreplace(dict(self.definitions)).replace(RowMax, lambda a: m)
        got = self.at_components(printed, list(z), [0] * n, [0] * n)
        expected = [self.component(list(z), i) for i in range(n)]
        return all(sp.simplify(sp.expand_log(sp.expand(a - b), force=True)) == 0
                   for a, b in zip(got, expected))


VECTOR_LAYERS = (
    VectorLayer("softmax", sp.exp(input) / S, sp.exp(input), r"\operatorname{softmax}",
                reference="torch.softmax(input, -1)", jacobian_closed_form="diag(s) - s s^T"),
    VectorLayer("log_softmax", input - sp.log(S), sp.exp(input), r"\log\operatorname{softmax}",
                reference="torch.log_softmax(input, -1)", jacobian_closed_form="I - 1 s^T"),
)

BY_NAME = {layer.name: layer for layer in VECTOR_LAYERS}
