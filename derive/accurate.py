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
from typing import Callable

import sympy as sp

from derive import rewrites
from derive.functions import Erfc, HighHalf, mpmath_modules
from derive.symbols import input, result

CHOICES = pathlib.Path(__file__).resolve().parent / "accurate_forms.json"
_a, _b = sp.Wild("a"), sp.Wild("b")


@dataclass(frozen=True)
class Rewrite:
    name: str
    note: str  # what it does and why, for the generated comment and `explain`
    apply: Callable[[sp.Expr], sp.Expr]


def _sigmoid_product(expr):
    """e^b/(1 + e^b)^2 -> 1/((1 + e^b)(1 + e^-b)), inside any product."""
    def split(mul):
        factors = list(mul.args)
        for f in factors:
            base, power = f.as_base_exp()
            if power != -2 or not isinstance(base, sp.Add) or len(base.args) != 2 or sp.S.One not in base.args:
                continue
            e = base.args[0] if base.args[1] == 1 else base.args[1]
            if isinstance(e, sp.exp) and e in factors:
                rest = [g for g in factors if g not in (f, e)]
                b = e.args[0]
                return sp.Mul(*rest) / ((1 + sp.exp(b)) * (1 + sp.exp(-b)))
        return mul
    return expr.replace(lambda e: e.is_Mul, split)


def _sech_squared(expr):
    """tanh(a)^2 -> 1 - sech(a)^2, with sech(a)^2 = 4 e^-2|a| / (1 + e^-2|a|)^2."""
    def sech2(a):
        t = sp.exp(-2 * sp.Abs(a))
        return 4 * t / (1 + t) ** 2
    return expr.replace(lambda e: e.is_Pow and e.exp == 2 and isinstance(e.base, sp.tanh),
                        lambda e: 1 - sech2(e.base.args[0]))


def _tanh_as_sigmoid(expr):
    """tanh(a) -> 2 sigma(2a) - 1, so that 1 + tanh(a) = 2 sigma(2a) cancels nothing."""
    return expr.replace(sp.tanh, lambda a: 2 / (1 + sp.exp(-2 * a)) - 1)


def _erfc_reflected(expr):
    """erf(a) -> erfc(-a) - 1, so that 1 + erf(a) = erfc(-a) cancels nothing for a < 0."""
    return expr.replace(sp.erf, lambda a: Erfc(-a) - 1)


def _erfc_direct(expr):
    """erf(a) -> 1 - erfc(a), so that 1 - erf(a) = erfc(a) cancels nothing for a > 0."""
    return expr.replace(sp.erf, lambda a: 1 - Erfc(a))


def _split_square(expr):
    """exp(c a^2) -> exp(c h^2) exp(c (a - h)(a + h)), h = a's high half (exact h*h)."""
    def split(e):
        c, a2 = e.args[0].as_coeff_Mul()
        if not (c.is_Number and a2.is_Pow and a2.exp == 2 and not a2.base.is_number):
            return e
        a = a2.base
        h = HighHalf(a)
        return sp.exp(c * h ** 2) * sp.exp(c * sp.Mul(a - h, a + h, evaluate=False))
    return expr.replace(lambda e: isinstance(e, sp.exp), split)


REWRITES = (
    Rewrite("sigmoid_product", "e^b/(1 + e^b)^2 -> sigma(b) sigma(-b): no 1 - sigma to round to 0",
            _sigmoid_product),
    Rewrite("sech_squared", "1 - tanh(a)^2 -> 4 e^-2|a|/(1 + e^-2|a|)^2: no 1 - tanh^2 to round to 0",
            _sech_squared),
    Rewrite("tanh_as_sigmoid", "tanh(a) -> 2 sigma(2a) - 1: 1 + tanh(a) = 2 sigma(2a) without cancelling",
            _tanh_as_sigmoid),
    Rewrite("erfc_reflected", "erf(a) -> erfc(-a) - 1: 1 + erf(a) = erfc(-a) without cancelling",
            _erfc_reflected),
    Rewrite("erfc_direct", "erf(a) -> 1 - erfc(a): 1 - erf(a) = erfc(a) without cancelling",
            _erfc_direct),
    Rewrite("split_square", "exp(c a^2) -> exp(c h^2) exp(c (a-h)(a+h)), h = a's high half: "
            "a^2 without the rounding that exp amplifies by |c a^2|", _split_square),
)
BY_NAME = {r.name: r for r in REWRITES}


@dataclass(frozen=True)
class Candidate:
    start: str  # "torch" (the torch profile's form) or "sympy" (SymPy's, in the input)
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
    """The forms the rewrites start from: the torch profile's and SymPy's own, in the input."""
    forms = {"torch": activation.derivative, "sympy": activation.safe_derivative}
    return {k: v for k, v in forms.items() if k == "torch" or v != forms["torch"]}


def build(activation, start, names, float64):
    expr = starts(activation)[start]
    for name in names:
        expr = BY_NAME[name].apply(expr)
    return Candidate(start, tuple(names), float64, expr)


def candidates(activation):
    """Every distinct form: each start, then each rewrite that changes it, in order (so
    every subset of REWRITES that applies), each evaluated natively and in float64."""
    forms = []
    for start, expr in starts(activation).items():
        found = [((), expr)]
        for rewrite in REWRITES:
            for names, e in list(found):
                new = rewrite.apply(e)
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
    """The candidate as a function of the input alone: result -> f(input)."""
    return candidate.derivative.subs(result, activation.forward)


def _plain(expr):
    """expr with this module's helper functions replaced by what they mean."""
    return expr.replace(HighHalf, lambda a: a).replace(Erfc, sp.erfc)


def prove(candidate, activation, points=200, digits=60):
    """'symbolic' when SymPy shows candidate - derivative = 0, else 'numeric: N points' when
    they agree to ``digits - 10`` digits at ``points`` random inputs at ``digits`` digits
    (none on a kink: the forms may differ there only by the row's convention, which both
    carry). Raises AssertionError with the first point where they differ."""
    import mpmath
    reference = activation.safe_derivative
    form = _plain(in_input(candidate, activation))
    if not form.has(sp.Piecewise, sp.Abs):
        try:
            if sp.simplify((form - reference).rewrite(sp.exp)) == 0:
                return "symbolic"
        except (TypeError, ValueError, NotImplementedError):
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
    `make accuracy` has not measured the layer yet."""
    row = (load_choices() if choices is None else choices).get(activation.name)
    if row is None:
        return Candidate("torch", (), False, activation.derivative)
    return build(activation, row["start"], row["rewrites"], row["float64"])
