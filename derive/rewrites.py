"""Numerical rewrites of raw SymPy derivatives.

A raw derivative is what ``sympy.diff`` returns. Some are exact but poor in floating point
(overflow, NaN, a wrong value at a kink). Each function here turns one into an equal
expression, on the domain stated in its docstring, that is safe to evaluate; the tests prove
every rewrite equal to the raw derivative (tests/test_rewrites.py).
"""
import sympy as sp

from derive.symbols import input, result

_a = sp.Wild("a")


def apply(expr, rewrites):
    """expr after each rewrite in turn (a layer lists the ones its formula needs)."""
    for rewrite in rewrites:
        expr = rewrite(expr)
    return expr


def kink_zero(expr):
    """Heaviside(a) -> 1 where a > 0, else 0.

    Trap: SymPy's d/dz Max(0, z) is Heaviside(z), and SymPy's Heaviside(0) is 1/2. PyTorch's
    ReLU backward uses 0 at the kink (``grad * (input > 0)``). Equal to the raw derivative
    everywhere but a = 0, where it takes PyTorch's value.
    """
    return expr.replace(sp.Heaviside, lambda a, *_: sp.Piecewise((1, a > 0), (0, True)))


def stable_sigmoid(expr):
    """exp(a)/(exp(a) + 1) -> 1/(1 + exp(-a)).

    Equal for every real a; the left side is inf/inf = NaN once exp(a) overflows (a > 88 in
    float32), the right side tends to 1. The printer spells it ``torch.sigmoid(a)``.
    """
    return expr.replace(sp.exp(_a) / (sp.exp(_a) + 1), 1 / (1 + sp.exp(-_a)))


def cdf_first(expr):
    """1/2 + erf(a)/2 -> (1 + erf(a))/2, summed before the other terms, as PyTorch's GELU
    backward sums ``0.5 * (1 + erf(x / sqrt 2)) + x * pdf``.

    Equal for every real a. The order matters in floating point: where erf(a) is about -1,
    1 + erf(a) first keeps the small Phi(x) and then adds x phi(x) to it; adding x phi(x) to
    erf(a)/2 first and 1/2 last cancels to nothing (61.9 bits of error in float64, against
    autograd's 46.7). SymPy distributes the 1/2 again unless the product stays unevaluated.
    """
    def group(add):
        halves = [t for t in add.args if t == sp.Rational(1, 2)]
        erfs = [t for t in add.args if t.is_Mul and t.as_coeff_Mul()[0] == sp.Rational(1, 2)
                and isinstance(t.as_coeff_Mul()[1], sp.erf)]
        if not halves or not erfs:
            return add
        rest = [t for t in add.args if t not in (halves[0], erfs[0])]
        cdf = sp.Mul(sp.Rational(1, 2), sp.Add(1, erfs[0].as_coeff_Mul()[1]), evaluate=False)
        return sp.Add(cdf, *rest, evaluate=False)
    return expr.replace(lambda e: e.is_Add, group)


def in_terms_of_result(derivative, forward):
    """Rewrite f'(input) as a function of result = f(input), as PyTorch's derivatives.yaml
    does for sigmoid (``result * (1 - result)``), tanh (``1 - result**2``) and ReLU
    (``result > 0``).

    Equal wherever f is invertible, and for a Piecewise f' (ReLU, LeakyReLU) wherever each
    condition on result holds for exactly the inputs its condition on input holds for.
    SymPy's own forms overflow: sigmoid's ``exp(-z)/(1 + exp(-z))**2`` is inf/inf = NaN at
    z = -1e4 in float32. And the output is kept for the next layer anyway, so a backward in
    terms of it keeps one tensor less between forward and backward.
    """
    folded = sp.piecewise_fold(derivative)
    if isinstance(folded, sp.Piecewise):
        return _conditions_on_result(folded, forward)
    direct = derivative.subs(forward, result)
    if input not in direct.free_symbols:
        return _simplest(direct)
    try:
        inverses = sp.solve(sp.Eq(result, forward), input)
    except NotImplementedError:  # SymPy cannot invert the forward
        inverses = []
    for inverse in inverses:
        candidate = sp.simplify(derivative.subs(input, inverse))
        if input not in candidate.free_symbols:
            return _simplest(candidate)
    raise ValueError("cannot write {} in terms of result = {}".format(derivative, forward))


def _conditions_on_result(piecewise, forward):
    """Piecewise((v, c(input)), ...) -> Piecewise((v, c(result)), ...), each new condition
    checked with solveset to select exactly the same real inputs (input > 0 and
    Max(0, input) > 0 do)."""
    pieces = []
    for value, condition in piecewise.args:
        if input in value.free_symbols:
            raise ValueError("cannot write {} in terms of result: a piece depends on the input".format(piecewise))
        if condition is not sp.true:
            on_result = condition.subs(input, result)
            same = sp.solveset(on_result.subs(result, forward), input, sp.S.Reals) == \
                sp.solveset(condition, input, sp.S.Reals)
            if not same:
                raise ValueError("cannot write {} in terms of result = {}: {} and {} select different "
                                 "inputs".format(piecewise, forward, condition, on_result))
            condition = on_result
        pieces.append((value, condition))
    return sp.Piecewise(*pieces)


def clamp_log(expr, floor):
    """log(a) -> Max(log(a), floor).

    PyTorch's BCELoss clamps each log at -100, so y_hat = 0 or 1 gives a finite loss instead
    of 0 * -inf = NaN. Equal to the raw expression wherever every log(a) >= floor.
    """
    return expr.replace(sp.log, lambda a: sp.Max(sp.log(a), floor))


def clamp_denominator(expr, variable, eps):
    """n/d -> n/Max(d, eps), with the fraction's sign moved so that d > 0 inside (0, 1).

    PyTorch's BCELoss backward divides by ``max(y_hat * (1 - y_hat), 1e-12)``, so y_hat = 0
    or 1 gives a large finite gradient, not inf or NaN. Trap: in float32 ``1 - 1e-12 == 1``,
    so clamping y_hat into [eps, 1 - eps] instead would do nothing. Equal to the raw
    expression wherever d >= eps.
    """
    numerator, denominator = sp.fraction(sp.factor(sp.together(expr)))
    if denominator.subs(variable, sp.Rational(1, 2)).is_negative:
        numerator, denominator = -numerator, -denominator
    coeff, factors = denominator.as_coeff_mul()
    if coeff.is_negative and variable - 1 in factors:  # -v (v - 1) -> v (1 - v), as torch
        denominator = -coeff * sp.Mul(*[1 - variable if f == variable - 1 else f for f in factors])
    return sp.expand(numerator) / sp.Max(denominator, eps)


def _simplest(expr):
    """The shortest of a few equal spellings; among equals a product, which keeps relative
    accuracy near result = 1 (r*(1 - r) rather than r - r**2), and 1 - r over -(r - 1)."""
    spellings = [expr, sp.factor(expr), sp.expand(expr)]
    spellings += [e.xreplace({result - 1: -(1 - result)}) for e in spellings]
    return min(spellings, key=lambda e: (sp.count_ops(e), e.is_Add, str(e)))
