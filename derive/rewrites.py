"""The rewrite stage: numeric rewrites applied to an expression before it is printed.

A raw derivative is what ``sympy.diff`` returns. Some are exact but poor in floating point
(overflow, NaN, a wrong value at a kink). Each rewrite here turns an expression into an equal
one, on the domain its note states, that is safe to evaluate. The model is
``sympy.codegen.rewriting``: a rewrite is an object called on an expression (``ReplaceOptim``
is a query and a value), a chain of them is applied in order (``optimize``), and named
functions such as ``log1p`` (``sympy.codegen.cfunctions``) carry what the printer then maps
to one call. The printers do no recognition of their own.

Every rewrite formats its own note, with its parameters, for the generated comments and for
``python -m derive explain``. The tests prove each one equal to what it replaced by a round
trip back to elementary functions (tests/test_rewrites.py).

Three groups:
- ``KINKS`` and ``IN_TERMS_OF_RESULT`` read the layer they rewrite for (its kink conventions,
  its forward); a row lists them like any other rewrite;
- row rewrites with parameters (``ClampLog``, ``ClampDenominator``, ``DivideCountLast``);
- ``BEFORE_PRINTING``: the spellings every expression gets (sigmoid, log1p, expm1).
"""
from functools import lru_cache

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p
from sympy.solvers.inequalities import reduce_rational_inequalities

from derive.functions import DivideLast, Sigmoid
from derive.symbols import input, result


class Rewrite:
    """One numeric rewrite. ``__call__(expr, layer)`` returns the rewritten expression
    (``layer`` is the row it rewrites for, read by the rewrites that need it); ``note(layer)``
    one sentence on what it does and where it is equal."""

    name = "rewrite"
    in_input = True  # the result is still a function of the input (not of ``result``)

    def __call__(self, expr, layer=None):
        raise NotImplementedError

    def note(self, layer=None):
        raise NotImplementedError

    def __repr__(self):
        return "<rewrite {}>".format(self.name)


class Replace(Rewrite):
    """Replacement passes, each a query and a value as in ``sympy.codegen.rewriting.
    ReplaceOptim`` (``expr.replace(query, value)``), applied in turn as ``optimize`` does,
    with their note. (Not ReplaceOptim itself: importing sympy.codegen.rewriting takes
    longer than the rest of `make derive`'s imports.)"""

    def __init__(self, name, query, value, note, then=()):
        self.name, self._note = name, note
        self._passes = [(query, value)] + list(then)

    def __call__(self, expr, layer=None):
        for query, value in self._passes:
            expr = expr.replace(query, value)
        return expr

    def note(self, layer=None):
        return self._note


def apply(expr, rewrites, layer=None):
    """expr after each rewrite in turn."""
    for rewrite in rewrites:
        expr = rewrite(expr, layer)
    return expr


def stages(expr, rewrites, layer=None):
    """[(rewrite, expression after it)] for every rewrite, in order."""
    done = []
    for rewrite in rewrites:
        expr = rewrite(expr, layer)
        done.append((rewrite, expr))
    return done


def steps(expr, rewrites, layer=None):
    """[(rewrite, expression after it)] for each rewrite that changed something: the
    record ``python -m derive explain`` prints and the generated comments cite."""
    done = []
    for rewrite in rewrites:
        after = rewrite(expr, layer)
        if after != expr:
            done.append((rewrite, after))
        expr = after
    return done


# -- named functions, before printing ---------------------------------------------------------
def _is_log_of_one_plus(e):
    return isinstance(e, sp.log) and isinstance(e.args[0], sp.Add) and sp.S.One in e.args[0].args


LOG1P = Replace(
    "log1p", _is_log_of_one_plus, lambda e: log1p(e.args[0] - 1),
    "log(1 + a) -> log1p(a): exact where a is tiny (1 + a would round to 1), and one kernel.")


def _exp_terms(e):
    """(k, exp(a)) for each term k*exp(a) of the Add e whose constant -k is also a term."""
    found = []
    for t in e.args:
        k, rest = t.as_coeff_Mul()
        if isinstance(rest, sp.exp) and -k in e.args:
            found.append((k, rest))
    return found


def _is_exp_minus_one(e):
    return isinstance(e, sp.Add) and bool(_exp_terms(e))


def _expm1(e):
    k, power = _exp_terms(e)[0]
    rest = list(e.args)
    rest.remove(k * power)
    rest.remove(-k)
    return sp.Add(k * expm1(power.args[0]), *rest)


EXPM1 = Replace("expm1", _is_exp_minus_one, _expm1,
                "k*exp(a) - k -> k*expm1(a): exact where a is tiny (exp(a) would round to 1).")


def _one_plus_exp(base):
    """b for a base 1 + exp(b), else None."""
    if isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
        (other,) = [t for t in base.args if t != 1]
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def _is_logistic_power(e):
    return isinstance(e, sp.Pow) and e.exp.is_integer and e.exp.is_negative and _one_plus_exp(e.base) is not None


def _is_logistic_product(e):
    # Products first: ``replace`` works bottom-up, and a power taken alone would leave its
    # exp(b) factors behind.
    return isinstance(e, sp.Mul) and any(_is_logistic_power(f) for f in e.args)


def _to_sigmoids(e):
    """exp(b)**j / (1 + exp(b))**k -> sigma(b)**j sigma(-b)**(k - j), for j <= k: since
    1 + exp(b) = 1/sigma(-b) and exp(b) = sigma(b)/sigma(-b). (A Mul holds exp(b) at most
    once: SymPy folds exp(b)**2 into exp(2 b). So j is 0 or 1.)"""
    factors = list(e.args) if isinstance(e, sp.Mul) else [e]
    consumed, sigmoids = set(), []
    for f in factors:
        if _is_logistic_power(f):
            b, k = _one_plus_exp(f.base), -f.exp
            j = 1 if sp.exp(b) in factors and sp.exp(b) not in consumed else 0
            if j:
                consumed.add(sp.exp(b))
            sigmoids.append(Sigmoid(b) ** j * Sigmoid(-b) ** (k - j))
    kept = [f for f in factors if not _is_logistic_power(f) and f not in consumed]
    return sp.Mul(*kept, *sigmoids)


SIGMOID = Replace(
    "sigmoid", _is_logistic_product, _to_sigmoids,
    "exp(b)**j/(1 + exp(b))**k -> sigmoid(b)**j*sigmoid(-b)**(k - j): equal for every real b; "
    "the left side is inf/inf = NaN once exp(b) overflows (b > 88 in float32).",
    then=[(_is_logistic_power, _to_sigmoids)])

ABS = Replace(
    "abs", lambda e: isinstance(e, sp.Mul) and any(isinstance(f, sp.sign) and f.args[0] in e.args for f in e.args),
    lambda e: sp.Mul(*[sp.Abs(f.args[0]) if isinstance(f, sp.sign) else f for f in e.args
                       if not any(isinstance(g, sp.sign) and g.args[0] == f for g in e.args)]),
    "a*sign(a) -> |a|, then one fraction: the terms that cancel at large |a| cancel exactly.",
    then=[(lambda e: isinstance(e, sp.Add) and e.has(sp.Abs), sp.together)])

LOG_SIGMOID = Replace(
    "log_sigmoid", lambda e: isinstance(e, sp.log) and isinstance(e.args[0], Sigmoid),
    lambda e: sp.Min(e.args[0].args[0], 0) - log1p(sp.exp(-sp.Abs(e.args[0].args[0]))),
    "log(sigmoid(a)) -> min(a, 0) - log1p(exp(-|a|)): equal for every real a; sigmoid(a) "
    "underflows to 0 (log 0 = -inf) once a < -88 in float32, where log sigmoid(a) is about a.")

BEFORE_PRINTING = (LOG1P, EXPM1, SIGMOID)
"""Applied to every expression, forward and backward, just before printing."""


@lru_cache(maxsize=None)  # the checks and the code context ask for the same expressions
def before_printing(expr):
    return apply(expr, BEFORE_PRINTING)


# -- kinks: PyTorch's value where f' jumps, from the row's data -------------------------------
class KinkError(ValueError):
    pass


def _close(a, b):
    return abs(complex(sp.N(a - b, 40))) < 1e-30


class Kinks(Rewrite):
    """f' as a Piecewise over intervals of the input, with each jump point given the value
    the row's ``kinks`` state (PyTorch's convention, checked against autograd in the tests)
    and NaN sent to the piece the row's ``at_nan`` names.

    Trap: SymPy's d/dz Max(0, z) is Heaviside(z), and SymPy's Heaviside(0) is 1/2, a value
    no PyTorch backward returns; and a Piecewise's own conditions are only one way of
    placing each boundary. Equal to the raw derivative everywhere but the jump points.
    """

    name = "kinks"

    def __call__(self, expr, layer=None):
        if not expr.has(sp.Heaviside, sp.Piecewise, sp.Max, sp.Min):
            return expr
        kinks = dict(getattr(layer, "kink_values", {}) or {})
        at_nan = getattr(layer, "nan_value", None)
        return on_intervals(expr, kinks, at_nan)

    def note(self, layer=None):
        kinks = getattr(layer, "kinks", {}) or {}
        text = "Heaviside, Max and Min -> a Piecewise over intervals of the input"
        if kinks:
            text += ", with PyTorch's values at the kinks: " + ", ".join(
                "f'({}) = {}".format(p, v) for p, v in kinks.items())
        if getattr(layer, "at_nan", None) is not None:
            text += "; f'(nan) = {}".format(layer.at_nan)
        return text + "."


def _boundaries(piecewise, x):
    """The points where a condition of the Piecewise changes truth: roots of each
    relation's sides' difference (linear or quadratic in x for every row so far)."""
    points = set()
    for _, cond in piecewise.args:
        for relation in cond.atoms(sp.core.relational.Relational):
            difference = relation.lhs - relation.rhs
            if not difference.is_polynomial(x) or sp.degree(difference, x) > 2:
                raise KinkError("cannot place the kinks of {}: the condition {} is not polynomial in {}".format(
                    piecewise, relation, x))
            points |= {r for r in sp.roots(sp.Poly(difference, x)) if r.is_real}
    return sorted(points, key=float)


def _piece_at(piecewise, point, x):
    for value, cond in piecewise.args:
        if cond.subs(x, point) == sp.true:
            return value
    raise KinkError("no piece of {} holds at {} = {}".format(piecewise, x, point))


def _same(a, b):
    return a == b or sp.expand(a - b) == 0


def _extremum_as_piecewise(e):
    """Max(a, b, ...) -> Piecewise((a, a >= b), ...), written directly: SymPy's
    ``rewrite(Piecewise)`` simplifies as it goes, slowly. A Piecewise argument (from an inner
    Max) is distributed over first, so that no condition ever holds a Piecewise."""
    if not isinstance(e, (sp.Max, sp.Min)):
        return e
    for i, a in enumerate(e.args):
        if isinstance(a, sp.Piecewise):
            rest = e.args[:i] + e.args[i + 1:]
            return sp.Piecewise(*[(_extremum_as_piecewise(e.func(v, *rest)), c) for v, c in a.args])
    first, rest = e.args[0], e.func(*e.args[1:]) if len(e.args) > 2 else e.args[1]
    keep = first >= rest if isinstance(e, sp.Max) else first <= rest
    return sp.Piecewise((first, keep), (rest, True))


def _extrema_folded(expr):
    """expr with every Max/Min as a Piecewise and the Piecewise folded out to the top, so that
    no condition holds a Piecewise (SymPy would rewrite such a condition and simplify it)."""
    return sp.piecewise_fold(expr.replace(lambda n: isinstance(n, (sp.Max, sp.Min)), _extremum_as_piecewise))


def on_intervals(expr, kinks, at_nan=None, x=input):
    # Max/Min first (most of this stage's time otherwise); then Heaviside.
    e = _extrema_folded(expr)
    e = e.replace(sp.Heaviside, lambda a, *_: sp.Piecewise((1, a > 0), (0, True)))
    e = sp.piecewise_fold(e)
    if not isinstance(e, sp.Piecewise):
        return expr
    bounds = _boundaries(e, x)
    edges = [-sp.oo] + bounds + [sp.oo]
    segments = []  # the expression on each open interval between the boundaries
    for a, b in zip(edges, edges[1:]):
        if a.is_finite and b.is_finite:
            mid = (a + b) / 2
        else:
            mid = sp.S.Zero if a == -sp.oo and b == sp.oo else (b - 1 if a == -sp.oo else a + 1)
        segments.append(_piece_at(e, mid, x))
    for p in kinks:
        if p not in bounds and not _close(_piece_at(e, p, x).subs(x, p), kinks[p]):
            raise KinkError("the row states f'({}) = {}, but f' is smooth there with value {}".format(
                p, kinks[p], _piece_at(e, p, x).subs(x, p)))
    # Each boundary goes to the side whose value there is the stated one.
    side = []  # for each boundary: 0, the left segment takes it; 1, the right one
    for k, p in enumerate(bounds):
        left, right = segments[k], segments[k + 1]
        lv, rv = left.subs(x, p), right.subs(x, p)
        if p in kinks:
            if _close(lv, kinks[p]):
                side.append(0)
            elif _close(rv, kinks[p]):
                side.append(1)
            else:
                raise KinkError("the row states f'({}) = {}, but the pieces meeting there give {} and {}".format(
                    p, kinks[p], lv, rv))
        elif _same(left, right) or _close(lv, rv):
            side.append(0)
        else:
            raise KinkError("f' jumps at {} = {} (from {} to {}) and the row states no value there: "
                            "add PyTorch's value to the row's kinks".format(x, p, lv, rv))
    values, sets = [], []
    for k, value in enumerate(segments):
        a, b = edges[k], edges[k + 1]
        left_open = k == 0 or side[k - 1] == 0
        right_open = k == len(segments) - 1 or side[k] == 1
        here = sp.Interval(a, b, left_open, right_open)
        match = [i for i, v in enumerate(values) if _same(v, value)]
        if match:
            sets[match[0]] = sp.Union(sets[match[0]], here)
        else:
            values.append(value)
            sets.append(here)
    if at_nan is None:
        fallback = len(values) - 1 if _same(values[-1], segments[-1]) else \
            [i for i, v in enumerate(values) if _same(v, segments[-1])][0]
    else:
        matches = [i for i, v in enumerate(values) if (x in v.free_symbols if at_nan is sp.nan else
                                                       (x not in v.free_symbols and _close(v, at_nan)))]
        if not matches:
            raise KinkError("the row states f'(nan) = {}, but no piece of f' gives it".format(at_nan))
        fallback = matches[-1]
    pieces = [(v, s.as_relational(x)) for i, (v, s) in enumerate(zip(values, sets)) if i != fallback]
    return sp.Piecewise(*pieces, (values[fallback], True))


KINKS = Kinks()


# -- the backward in terms of the forward's result --------------------------------------------
class InTermsOfResult(Rewrite):
    """f'(input) as a function of result = f(input), as PyTorch's derivatives.yaml does for
    sigmoid (``result * (1 - result)``), tanh (``1 - result**2``) and ReLU (``result > 0``).

    Equal wherever f is invertible, and for a Piecewise f' wherever each condition on result
    holds for exactly the inputs its condition on input holds for. SymPy's own forms
    overflow: sigmoid's ``exp(-z)/(1 + exp(-z))**2`` is inf/inf = NaN at z = -1e4 in float32.
    And the output is kept for the next layer anyway, so the backward keeps one tensor less.
    """

    name = "in_terms_of_result"
    in_input = False

    def __call__(self, expr, layer=None):
        return in_terms_of_result(expr, layer.forward)

    def note(self, layer=None):
        return "f' in terms of result = f(input), as PyTorch's derivatives.yaml: the backward " \
               "reads the forward's output, which is kept anyway."


IN_TERMS_OF_RESULT = InTermsOfResult()


def _cdf_pair(add):
    """(the 1/2 term, the erf(a)/2 term) of an Add, or None."""
    if not isinstance(add, sp.Add):
        return None
    halves = [t for t in add.args if t == sp.Rational(1, 2)]
    erfs = [t for t in add.args if t.is_Mul and t.as_coeff_Mul()[0] == sp.Rational(1, 2)
            and isinstance(t.as_coeff_Mul()[1], sp.erf)]
    return (halves[0], erfs[0]) if halves and erfs else None


def _cdf_first(add):
    half, erf_term = _cdf_pair(add)
    rest = [t for t in add.args if t not in (half, erf_term)]
    # Unevaluated: SymPy would distribute the 1/2 again.
    cdf = sp.Mul(sp.Rational(1, 2), sp.Add(1, erf_term.as_coeff_Mul()[1]), evaluate=False)
    return sp.Add(cdf, *rest, evaluate=False)


CDF_FIRST = Replace(
    "cdf_first", lambda e: _cdf_pair(e) is not None, _cdf_first,
    "1/2 + erf(a)/2 -> (1 + erf(a))/2, summed before the other terms, as PyTorch's GELU backward "
    "(0.5*(1 + erf(x/sqrt 2)) + x*pdf): equal for every real a; where erf(a) is about -1, adding "
    "x*phi(x) to erf(a)/2 before the 1/2 cancels it away (61.9 bits of error in float64, "
    "autograd 46.7).")


def in_terms_of_result(derivative, forward):
    folded = sp.piecewise_fold(derivative)
    if isinstance(folded, sp.Piecewise):
        return _conditions_on_result(folded, forward)
    direct = derivative.subs(forward, result)
    if input not in direct.free_symbols:
        return _simplest(direct)
    try:
        # check=False: a wrong inverse gives a candidate still in the input, or fails the
        # checks (derive.checks and the tests compare the result with the raw derivative).
        inverses = sp.solve(sp.Eq(result, forward), input, check=False, simplify=False)
    except NotImplementedError:  # SymPy cannot invert the forward
        inverses = []
    for inverse in inverses:
        candidate = derivative.subs(input, inverse)
        if input not in candidate.free_symbols:
            # cancel is enough where the forward is a rational function of exp (sigmoid);
            # simplify, many times slower, for the rest.
            tidied = sp.cancel(candidate)
            if sp.count_ops(tidied) > 6:
                tidied = sp.simplify(candidate)
            return _simplest(tidied)
    raise ValueError("cannot write {} in terms of result = {}".format(derivative, forward))


def _conditions_on_result(piecewise, forward):
    """Piecewise((v, c(input)), ...) -> Piecewise((v, c(result)), ...), each new condition
    checked to select exactly the same real inputs (input > 0 and Max(0, input) > 0 do)."""
    pieces = []
    for value, condition in piecewise.args:
        if input in value.free_symbols:
            raise ValueError("cannot write {} in terms of result: a piece depends on the input".format(piecewise))
        if condition is not sp.true:
            on_result = condition.subs(input, result)
            if truth_set(on_result.subs(result, forward)) != truth_set(condition):
                raise ValueError("cannot write {} in terms of result = {}: {} and {} select different "
                                 "inputs".format(piecewise, forward, condition, on_result))
            condition = on_result
        pieces.append((value, condition))
    return sp.Piecewise(*pieces)


def truth_set(condition):
    """The real inputs where ``condition`` holds, exactly.

    Max/Min become Piecewise and the Piecewise is folded out of the relation, so a
    piecewise-linear condition is a union of polynomial inequalities on intervals, which
    ``reduce_rational_inequalities`` solves directly. solveset would get there too, but
    every call runs ``periodicity``, which runs ``simplify`` (and its first call imports
    sympy.physics): ten times slower, most of ``make derive``'s time for one row."""
    folded = _extrema_folded(condition)
    if isinstance(folded, sp.Piecewise):
        return sp.Union(*[truth_set(c).intersect(where) for c, where in folded.as_expr_set_pairs(sp.S.Reals)])
    if folded in (sp.true, sp.false):
        return sp.S.Reals if folded is sp.true else sp.S.EmptySet
    if isinstance(folded, sp.core.relational.Relational) and (folded.lhs - folded.rhs).is_polynomial(input):
        return reduce_rational_inequalities([[folded]], input, relational=False)
    return sp.solveset(folded, input, sp.S.Reals)


def _simplest(expr):
    """The shortest of a few equal spellings; among equals a product, which keeps relative
    accuracy near result = 1 (r*(1 - r) rather than r - r**2), and 1 - r over -(r - 1)."""
    spellings = [expr, sp.factor(expr), sp.expand(expr)]
    spellings += [e.xreplace({result - 1: sp.Mul(-1, 1 - result, evaluate=False)}) for e in spellings]
    return min(spellings, key=lambda e: (sp.count_ops(e), e.is_Add, str(e)))


# -- rewrites with parameters (the losses) ----------------------------------------------------
class ClampLog(Rewrite):
    """log(a) -> Max(log(a), floor), as PyTorch's BCELoss clamps each log (at -100), so
    y_hat = 0 or 1 gives a finite loss instead of 0 * -inf = NaN."""

    name = "clamp_log"

    def __init__(self, floor):
        self.floor = floor

    def __call__(self, expr, layer=None):
        return expr.replace(sp.log, lambda a: sp.Max(sp.log(a), self.floor, evaluate=False))

    def note(self, layer=None):
        return "log(a) -> max(log(a), {}): a finite loss at y_hat = 0 or 1, as PyTorch's BCELoss; " \
               "equal wherever log(a) >= {}.".format(self.floor, self.floor)


class ClampStep(Rewrite):
    """Heaviside(a) -> 0 where a < 0, else 1: the derivative of a clamp, as autograd's.

    d/dx max(g(x), floor) is Heaviside(g(x) - floor) g'(x); SymPy's Heaviside(0) is 1/2, a
    value no backward returns. PyTorch's clamp backward passes the gradient where the input is
    >= the bound, the bound included; and a NaN (which fails a < 0) keeps the passing piece,
    so it propagates. Equal to the raw derivative everywhere but a = 0.
    """

    name = "clamp_step"

    def __call__(self, expr, layer=None):
        return expr.replace(sp.Heaviside, lambda a, *_: sp.Piecewise((0, a < 0), (1, True)))

    def note(self, layer=None):
        return "Heaviside(a) of a clamp -> 0 where a < 0, else 1: autograd's clamp backward, " \
               "the bound included, NaN propagating (SymPy's Heaviside(0) is 1/2)."


CLAMP_STEP = ClampStep()


class ClampDenominator(Rewrite):
    """n/d -> n/Max(d, eps), with the fraction's sign moved so that d > 0 inside (0, 1).

    PyTorch's BCELoss backward divides by ``max(y_hat * (1 - y_hat), 1e-12)``, so y_hat = 0
    or 1 gives a large finite gradient, not inf or NaN. Trap: in float32 ``1 - 1e-12 == 1``,
    so clamping y_hat into [eps, 1 - eps] instead would do nothing.
    """

    name = "clamp_denominator"

    def __init__(self, variable, eps):
        self.variable, self.eps = variable, eps

    def __call__(self, expr, layer=None):
        numerator, denominator = positive_fraction(expr, self.variable)
        return sp.expand(numerator) / sp.Max(denominator, self.eps, evaluate=False)

    def note(self, layer=None):
        return "n/d -> n/max(d, {:g}), d = {}: a finite gradient at y_hat = 0 or 1, as PyTorch's " \
               "BCELoss; equal wherever d >= {:g}.".format(float(self.eps), positive_fraction(
                   1 / (self.variable * (1 - self.variable)), self.variable)[1], float(self.eps))


def positive_fraction(expr, variable):
    """(numerator, denominator) of expr, the sign moved so that the denominator is positive
    on (0, 1), written v (1 - v) rather than -v (v - 1). The theory's display form of a
    derivative uses the same."""
    numerator, denominator = sp.fraction(sp.factor(sp.together(expr)))
    if denominator.subs(variable, sp.Rational(1, 2)).is_negative:
        numerator, denominator = -numerator, -denominator
    coeff, factors = denominator.as_coeff_mul()
    if coeff.is_negative and variable - 1 in factors:  # -v (v - 1) -> v (1 - v), as torch
        denominator = -coeff * sp.Mul(*[1 - variable if f == variable - 1 else f for f in factors])
    return numerator, denominator


class DivideCountLast(Rewrite):
    """c * t / count -> DivideLast(t, count / c): a reduction's count divides last.

    PyTorch's 'mean' reductions divide last (BCELoss's backward computes its elementwise
    formula, then divides by numel). Trap: where y_hat saturates, BCE's gradient is 1e6 to
    1e12 and one float32 ulp is more than the course's absolute 1e-3, so folding numel into
    another denominator, or multiplying by 1/numel first, fails its tests. A power-of-two
    coefficient moves under the count: one tensor op less, the same value (2**k is exact).
    """

    name = "divide_count_last"

    def __init__(self, count):
        self.count = count

    def __call__(self, expr, layer=None):
        if not expr.has(self.count) or isinstance(expr, DivideLast):
            return expr
        coeff, factors = expr.as_coeff_mul()
        # Built from the factors, not as expr * count: SymPy would distribute the
        # coefficient over a sum, 2*(x - y) -> 2*x - 2*y.
        rest = sp.Mul(*[f for f in factors if f != 1 / self.count])
        if rest.has(self.count):
            return expr
        below = self.count
        power = abs(coeff)
        if power.is_Integer and power > 1 and power & (power - 1) == 0:
            coeff, below = sp.sign(coeff), DivideLast(self.count, power)
        return DivideLast(coeff * rest, below) if coeff != 1 else DivideLast(rest, below)

    def note(self, layer=None):
        return "divide by {} last, in PyTorch's rounding order (a power-of-two factor moves under " \
               "it: exact).".format(self.count)
