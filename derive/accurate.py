"""The accurate profile: candidate forms of each activation's derivative, made by rewrites.

PyTorch's backward formulas (the torch profile) are exact in real arithmetic and often poor
in floating point: sigmoid' = result*(1 - result) is 0 where e^-x is a perfectly good float.
Here each activation's derivative is put through every combination of the rewrites in
``REWRITES`` (in order), in terms of the input and of the result, evaluated in the input's
dtype or in float64 and rounded once. Every candidate is proved equal to the derivative
(``prove``); `make accuracy` measures them all against mpmath and writes the winner of each
layer to ``accurate_forms.json``, which `make derive` reads (``chosen``) to print
``<name>_backward_accurate``. Nothing here is chosen by hand.
"""
import json
import pathlib
import random
from dataclasses import dataclass

import sympy as sp

from derive import rewrites
from derive.functions import Erfc, HighHalf, Sigmoid, elementary, mpmath_modules
from derive.symbols import input, result

CHOICES = pathlib.Path(__file__).resolve().parent / "accurate_forms.json"
SYMBOLIC_OPS = 40  # the largest pair of forms ``prove`` asks SymPy to simplify


class Rule(rewrites.Rewrite):
    """A candidate rewrite: a function of the expression, with its note."""

    def __init__(self, name, function, note):
        self.name, self._function, self._note = name, function, note

    def __call__(self, expr, layer=None):
        return self._function(expr)

    def note(self, layer=None):
        return self._note


def _sech_squared(expr):
    def sech2(a):
        t = sp.exp(-2 * sp.Abs(a))
        return 4 * t / (1 + t) ** 2
    return expr.replace(lambda e: e.is_Pow and e.exp == 2 and isinstance(e.base, sp.tanh),
                        lambda e: 1 - sech2(e.base.args[0]))


def _split_square(expr):
    def split(e):
        c, a2 = e.args[0].as_coeff_Mul()
        if not (c.is_Number and a2.is_Pow and a2.exp == 2 and not a2.base.is_number):
            return e
        a = a2.base
        h = HighHalf(a)
        return sp.exp(c * h ** 2) * sp.exp(c * sp.Mul(a - h, a + h, evaluate=False))
    return expr.replace(lambda e: isinstance(e, sp.exp), split)


REWRITES = (
    Rule("sech_squared", _sech_squared,
         "tanh(a)^2 -> 1 - 4 e^-2|a|/(1 + e^-2|a|)^2: 1 - tanh(a)^2 without rounding tanh^2 to 1."),
    Rule("tanh_as_sigmoid", lambda e: e.replace(sp.tanh, lambda a: 2 * Sigmoid(2 * a) - 1),
         "tanh(a) -> 2 sigmoid(2a) - 1: 1 + tanh(a) = 2 sigmoid(2a) without cancelling."),
    Rule("erfc_reflected", lambda e: e.replace(sp.erf, lambda a: Erfc(-a) - 1),
         "erf(a) -> erfc(-a) - 1: 1 + erf(a) = erfc(-a) without cancelling."),
    Rule("erfc_direct", lambda e: e.replace(sp.erf, lambda a: 1 - Erfc(a)),
         "erf(a) -> 1 - erfc(a): 1 - erf(a) = erfc(a) without cancelling."),
    Rule("split_square", _split_square,
         "exp(c a^2) -> exp(c h^2) exp(c (a-h)(a+h)), h = a's high half: a^2 without the rounding "
         "that exp amplifies by |c a^2|."),
)
BY_NAME = {r.name: r for r in REWRITES}


@dataclass(frozen=True)
class Candidate:
    start: str  # "torch" (the torch profile's form), "sympy" (SymPy's, in the input), "alternative N"
    rewrites: tuple  # names from REWRITES, in the order applied
    float64: bool  # evaluated in float64 and rounded once to the input's dtype
    derivative: sp.Expr

    @property
    def key(self):
        return "{}:{}{}".format(self.start, "+".join(self.rewrites) or "as is", " in float64" if self.float64 else "")

    @property
    def saves(self):
        return tuple(s.name for s in (input, result) if s in self.derivative.free_symbols)


def starts(activation):
    """The forms the rewrites start from: the torch profile's, SymPy's own in the input, and
    the row's alternative rewrite chains."""
    forms = {"torch": activation.derivative, "sympy": activation.safe_derivative}
    for i, chain in enumerate(getattr(activation, "alternatives", ()), 1):
        forms["alternative {}".format(i)] = activation.derivative_with(chain)
    out = {}
    for k, v in forms.items():
        if v not in out.values():
            out[k] = v
    return out


def build(activation, start, names, float64):
    expr = starts(activation)[start]
    for name in names:
        expr = BY_NAME[name](expr, activation)
    return Candidate(start, tuple(names), float64, expr)


def candidates(activation):
    """Every distinct form: each start, then each rewrite that changes it, in order (so
    every subset of REWRITES that applies), each evaluated natively and in float64."""
    forms = []
    for start, expr in starts(activation).items():
        found = [((), expr)]
        for rewrite in REWRITES:
            for names, e in list(found):
                new = rewrite(e, activation)
                if new != e:
                    found.append((names + (rewrite.name,), new))
        forms += [(start, names, e) for names, e in found]
    seen, out = set(), []
    for start, names, e in forms:
        if e in seen:
            continue
        seen.add(e)
        out.append(Candidate(start, names, False, e))
        if e.free_symbols:  # a constant is exact in every dtype
            out.append(Candidate(start, names, True, e))
    return out


def in_input(candidate, activation):
    """The candidate as a function of the input alone (result -> f(input)), written with
    elementary functions only."""
    return elementary(candidate.derivative.subs(result, activation.forward))


def prove(candidate, activation, points=200, digits=60):
    """'symbolic' when SymPy shows candidate - derivative = 0, else 'numeric: ...' when they
    agree to ``digits - 10`` digits at ``points`` random inputs at ``digits`` digits (none on
    a kink: both carry the row's convention there). Raises AssertionError naming the first
    point where they differ."""
    import mpmath
    reference = elementary(activation.safe_derivative)
    form = in_input(candidate, activation)
    # simplify is tried on small forms only: on GELU-tanh's it runs for minutes.
    if not form.has(sp.Piecewise, sp.Abs, sp.Min, sp.Max, sp.Heaviside) and \
            sp.count_ops(form) + sp.count_ops(reference) <= SYMBOLIC_OPS:
        try:
            if sp.simplify((form - reference).rewrite(sp.exp)) == 0:
                return "symbolic"
        except (TypeError, ValueError, NotImplementedError, AttributeError):
            pass
    ours, theirs = (sp.lambdify(input, e, modules=mpmath_modules()) for e in (form, reference))
    rng = random.Random(13)
    with mpmath.workdps(digits):
        for _ in range(points):
            x = mpmath.mpf(rng.uniform(-30, 30)) if rng.random() < 0.5 else \
                mpmath.mpf(rng.choice((-1, 1)) * 10 ** rng.uniform(-8, 3.5))
            a, b = mpmath.mpf(ours(x)), mpmath.mpf(theirs(x))
            if abs(a - b) > mpmath.mpf(10) ** (10 - digits) * max(1, abs(b)):
                raise AssertionError("{} differs from {}'s derivative at x = {}: {} vs {}".format(
                    candidate.key, activation.name, x, a, b))
    return "numeric: {} points at {} digits".format(points, digits)


def load_choices():
    if not CHOICES.exists():
        return {}
    return json.loads(CHOICES.read_text())["layers"]


def chosen(activation, choices=None):
    """The measured winner for this activation, or the torch profile's own form when
    `make accuracy` has not measured the layer (or its record names what no longer exists)."""
    row = (load_choices() if choices is None else choices).get(activation.name)
    try:
        return build(activation, row["start"], row["rewrites"], row["float64"])
    except (TypeError, KeyError):  # not measured, or a start or rewrite that is gone
        # tests/test_accuracy.py fails on this until `make accuracy` has run.
        return Candidate("torch", (), False, activation.derivative)
