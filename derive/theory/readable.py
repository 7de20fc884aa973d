"""Derivatives written for people: the named functions a reader knows, not SymPy's raw form.

The layer rows of ``derive.activations`` hold what the code evaluates. A reader of the theory
wants the mathematics: Softplus'(x) = sigma(x) (not exp(x)/(exp(x) + 1), nor PyTorch's cutoff
at x > 20), GELU'(x) = Phi(x) + x phi(x) (not erf(sqrt(2) x/2)/2 + ...). Two steps get there
from the layer's own derivative, and tests/test_theory.py proves each result equal to it:

1. ``without_cutoffs``: a Piecewise branch that differs from the ``otherwise`` branch by less
   than float32's rounding everywhere on its region is an implementation shortcut (Softplus'
   linear piece above its threshold), not mathematics; it is dropped. ``without_clamps``: a
   ``Max(a, c)`` with a constant c guards a division (BCE's 1e-12); mathematics has ``a``.
2. ``named``: each named function below has one recognition rule (``sympy.codegen.rewriting``
   ReplaceOptim); a rule is kept only where it makes the expression shorter, as in
   ``sympy.codegen.rewriting.optimize`` with a cost function.
"""
from functools import lru_cache

import mpmath
import sympy as sp
from sympy.codegen.rewriting import ReplaceOptim

from derive.symbols import input

FLOAT32_EPS = 2.0 ** -23


class sigma(sp.Function):
    """The logistic function 1/(1 + e^-a); sigma(-a) = 1 - sigma(a)."""

    latex_name = r"\sigma"
    definition = staticmethod(lambda a: 1 / (1 + sp.exp(-a)))
    display = definition

    @classmethod
    def eval(cls, a):
        if a.could_extract_minus_sign():
            return 1 - cls(-a)

    def _eval_rewrite_as_exp(self, a, **kwargs):
        return self.definition(a)

    def fdiff(self, argindex=1):
        return self * (1 - self)


class Phi(sp.Function):
    """The standard normal CDF, (1 + erf(a/sqrt 2))/2; Phi(-a) = 1 - Phi(a)."""

    latex_name = r"\Phi"
    definition = staticmethod(lambda a: (1 + sp.erf(a / sp.sqrt(2))) / 2)
    # As a reader knows it: the integral of the density (tests prove it equal to ``definition``).
    display = staticmethod(lambda a, t=sp.Dummy("t", real=True): sp.Integral(phi(t), (t, -sp.oo, a)))

    @classmethod
    def eval(cls, a):
        if a.could_extract_minus_sign():
            return 1 - cls(-a)

    def _eval_rewrite_as_erf(self, a, **kwargs):
        return self.definition(a)

    def fdiff(self, argindex=1):
        return phi(self.args[0])


class phi(sp.Function):
    """The standard normal density, exp(-a^2/2)/sqrt(2 pi); even."""

    latex_name = r"\varphi"
    definition = staticmethod(lambda a: sp.exp(-a ** 2 / 2) / sp.sqrt(2 * sp.pi))
    # 1/sqrt(2 pi) kept whole; SymPy would print sqrt(2) e^(-a^2/2) / (2 sqrt(pi)).
    display = staticmethod(lambda a: sp.Mul(sp.exp(-a ** 2 / 2), sp.Pow(sp.Pow(sp.Mul(2, sp.pi, evaluate=False),
                                                                           sp.Rational(1, 2), evaluate=False),
                                                                    -1, evaluate=False), evaluate=False))

    @classmethod
    def eval(cls, a):
        if a.could_extract_minus_sign():
            return cls(-a)

    def _eval_rewrite_as_exp(self, a, **kwargs):
        return self.definition(a)

    def fdiff(self, argindex=1):
        return -self.args[0] * self


NAMED = (sigma, Phi, phi)


def _gaussian(e):
    """u where e = exp(-u**2/2), or None. Structural, not ``match``: a pattern match also
    finds u = sqrt(2) sqrt(-x) in exp(x)."""
    if not isinstance(e, sp.exp):
        return None
    coefficient, square = (-2 * e.args[0]).as_coeff_Mul()
    if coefficient.is_positive and square.is_Pow and square.exp == 2:
        return sp.sqrt(coefficient) * square.base
    return None


# Each rule inverts a definition above: erf(u) = 2 Phi(sqrt 2 u) - 1, erfc(u) = 2 Phi(-sqrt 2 u),
# exp(-u^2/2) = sqrt(2 pi) phi(u), exp(u) = sigma(u)/(1 - sigma(u)).
RULES = (
    ReplaceOptim(lambda e: isinstance(e, sp.erf), lambda e: 2 * Phi(sp.sqrt(2) * e.args[0]) - 1),
    ReplaceOptim(lambda e: isinstance(e, sp.erfc), lambda e: 2 * Phi(-sp.sqrt(2) * e.args[0])),
    ReplaceOptim(lambda e: _gaussian(e) is not None, lambda e: sp.sqrt(2 * sp.pi) * phi(_gaussian(e))),
    ReplaceOptim(lambda e: isinstance(e, sp.exp), lambda e: sigma(e.args[0]) / (1 - sigma(e.args[0]))),
)


def _tidy(expr):
    """The shorter of expr and its cancelled form, common factors pulled out. cancel is all
    the rules' results need (sigma/((1 + sigma/(1 - sigma))(1 - sigma)) -> sigma); simplify
    finds the same forms here at ten times the cost."""
    return min((sp.factor_terms(e) for e in (expr, sp.cancel(expr))), key=lambda e: (sp.count_ops(e), str(e)))


def named(expr):
    """expr with each rule applied where the result is shorter (SymPy's count_ops)."""
    if isinstance(expr, sp.Piecewise):
        return sp.Piecewise(*[(named(e), c) for e, c in expr.args])
    for rule in RULES:
        replaced = rule(expr)
        if replaced == expr:
            continue
        candidate = _tidy(replaced)
        if sp.count_ops(candidate) < sp.count_ops(expr):
            expr = candidate
    return expr


def elementary(expr):
    """The inverse of ``named``: every named function by its definition."""
    return expr.replace(lambda e: isinstance(e, NAMED), lambda e: e.definition(e.args[0]))


def _region_points(condition):
    """A few points of the region ``input > c`` or ``input < c`` (c a number), from its
    edge outwards; None for any other condition."""
    if not isinstance(condition, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan)):
        return None
    if condition.lhs != input or not condition.rhs.is_number:
        return None
    edge = float(condition.rhs)
    outward = 1 if isinstance(condition, (sp.StrictGreaterThan, sp.GreaterThan)) else -1
    return [edge + outward * d for d in (1e-9, 1, 10, 100, 1000)]


def _indistinguishable(a, b, points):
    with mpmath.workdps(30):
        for p in points:
            va = sp.N(a.subs(input, p), 30)
            vb = sp.N(b.subs(input, p), 30)
            if abs(va - vb) > FLOAT32_EPS * max(abs(vb), sp.Float(1e-300)):
                return False
    return True


def cutoffs(expr):
    """[(value, condition)]: the branches of a Piecewise that agree with its ``otherwise``
    branch to float32 rounding on their whole region (checked at the edge and outwards)."""
    if not isinstance(expr, sp.Piecewise) or expr.args[-1][1] != sp.true:
        return []
    otherwise = expr.args[-1][0]
    return [(value, condition) for value, condition in expr.args[:-1]
            if _region_points(condition) is not None
            and _indistinguishable(value, otherwise, _region_points(condition))]


def without_cutoffs(expr):
    """The Piecewise without its ``cutoffs``."""
    dropped = cutoffs(expr)
    if not dropped:
        return expr
    kept = [(v, c) for v, c in expr.args if (v, c) not in dropped]
    return sp.Piecewise(*kept) if len(kept) > 1 else kept[0][0]


def without_clamps(expr):
    """Max(a, c) -> a for a constant c: the guard a floating-point evaluation puts on a
    denominator or a log, which mathematics does not need."""
    return expr.replace(lambda e: isinstance(e, sp.Max) and len(e.args) == 2 and any(a.is_number for a in e.args),
                        lambda e: next(a for a in e.args if not a.is_number))


@lru_cache(maxsize=None)
def derivative(activation):
    """f'(input) as the theory writes it: the layer's derivative without cutoffs, in named
    functions."""
    return named(without_cutoffs(sp.piecewise_fold(activation.safe_derivative)))


@lru_cache(maxsize=None)
def forward(activation):
    """f(input) as the theory defines it: the layer's forward without cutoffs, in named
    functions (GELU is x Phi(x))."""
    return named(without_cutoffs(sp.piecewise_fold(activation.forward)))
