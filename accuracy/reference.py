"""True derivative values from mpmath, correctly rounded to the dtype, cached on disk.

An expression is evaluated at 60 significant digits plus a guard; every sum checks how many
digits it cancels, every log how close to 1 its argument is, and asks for that many more (1 + erf(x / sqrt 2) at x = -26 needs 150 digits
to keep any), and a value is accepted when an evaluation with more guard digits agrees. The results are cached under .cache/accuracy/, keyed
by the expression, the dtype and the sweep, so each is computed once per machine.
"""
import hashlib
import pathlib

import mpmath
import numpy as np
import sympy as sp
from mpmath import libmp
from sympy.printing.pycode import MpmathPrinter

from accuracy import sweep
from derive.functions import mpmath_modules

DIGITS = 60
GUARD = 20
MAX_DIGITS = 2000
CACHE = pathlib.Path(__file__).resolve().parent.parent / ".cache" / "accuracy"
_VERSION = "3"
_MANTISSA = {np.dtype(np.float32): 24, np.dtype(np.float64): 53}


class _Cancelled(ArithmeticError):
    def __init__(self, digits):
        super().__init__(digits)
        self.digits = digits


def _checked_add(*terms):
    """A sum that refuses to lose more digits to cancellation than the guard allows: where
    erf(a) is about -1, 1 + erf(a) at 60 digits is 0 at 60 and at 100 digits alike, so only
    watching the sum, not comparing two precisions, finds the loss."""
    total = mpmath.fsum(terms)
    largest = max(abs(mpmath.mpf(t)) for t in terms)
    if largest == 0:
        return total
    # An exact 0 says only that every digit at this precision cancelled: double it.
    lost = mpmath.mp.dps if total == 0 else float(mpmath.log10(largest / abs(total)))
    if lost > mpmath.mp.dps - DIGITS - 5:
        if mpmath.mp.dps < MAX_DIGITS:
            raise _Cancelled(lost)
        # At the cap the sum is known only to be below largest * 10^-dps: fine when that is
        # far below every float (the point does not count), an error otherwise.
        if largest * mpmath.mpf(10) ** (5 - mpmath.mp.dps) > mpmath.mpf(10) ** -400:
            raise ArithmeticError("a sum cancels more than {} digits".format(MAX_DIGITS))
        return mpmath.mpf(0)
    return total


def _checked_log(a):
    """log(a) that refuses an a rounded to 1: log(1 + e^-247) is 0 at 60 and at 100 digits
    alike, 1e-107 at 130."""
    a = mpmath.mpf(a)
    distance = abs(a - 1)
    if a > 0 and distance < 1:
        lost = mpmath.mp.dps if distance == 0 else float(-mpmath.log10(distance))
        if lost > mpmath.mp.dps - DIGITS - 5 and mpmath.mp.dps < MAX_DIGITS:
            raise _Cancelled(lost)
    return mpmath.log(a)


class _CheckedPrinter(MpmathPrinter):
    """Prints every sum and every log through the checks above."""

    def _print_Add(self, expr, order=None):
        return "_checked_add({})".format(", ".join(self._print(a) for a in expr.args))

    def _print_log(self, expr):
        return "_checked_log({})".format(self._print(expr.args[0]))


def _lambdify(expr, symbol):
    modules = mpmath_modules()
    checks = {"_checked_add": _checked_add, "_checked_log": _checked_log}
    return sp.lambdify(symbol, expr, modules=[dict(modules[0], **checks)] + modules[1:],
                       printer=_CheckedPrinter({"fully_qualified_modules": False, "inline": True,
                                                "allow_unknown_functions": True, "user_functions": {}}))


def _evaluate(function, x):
    """function(x) to DIGITS significant digits: evaluated with GUARD more, more still where a
    sum cancels, and accepted once a second evaluation with GUARD more digits agrees."""
    digits = DIGITS + GUARD
    previous = None
    while True:
        try:
            with mpmath.workdps(digits):
                value = mpmath.mpf(function(mpmath.mpf(x)))
        except _Cancelled as cancelled:
            digits = min(int(digits + cancelled.digits + GUARD), MAX_DIGITS)
            previous = None
            continue
        if previous is not None and (value == previous or
                                     abs(value - previous) <= abs(value) * mpmath.mpf(10) ** -DIGITS):
            return value
        if previous is not None and digits >= MAX_DIGITS:
            raise ArithmeticError("no stable value at {} digits at x = {!r}".format(MAX_DIGITS, x))
        previous = value
        digits = min(digits + GUARD, MAX_DIGITS)


def round_to(value, dtype):
    """value correctly rounded (to nearest) to dtype; +-inf beyond its range."""
    rounded = libmp.mpf_pos(value._mpf_, _MANTISSA[np.dtype(dtype)], libmp.round_nearest)
    as_double = libmp.to_float(rounded, rnd=libmp.round_nearest)
    with np.errstate(over="ignore"):
        return np.asarray(as_double).astype(dtype)


def true_values(expr, symbol, dtype, xs=None):
    """(truth, normal): the correctly rounded f'(x) at each sweep point of ``dtype``, and
    where that truth is a normal float of the dtype (the only points that count)."""
    dtype = np.dtype(dtype)
    xs = sweep.points(dtype) if xs is None else np.asarray(xs, dtype=dtype)
    key = hashlib.sha256("\n".join([_VERSION, sp.srepr(expr), str(symbol), dtype.name,
                                    xs.tobytes().hex()]).encode()).hexdigest()[:32]
    path = CACHE / "{}.npy".format(key)
    if path.exists():
        truth = np.load(path)
    else:
        function = _lambdify(expr, symbol)
        truth = np.array([round_to(_evaluate(function, float(x)), dtype) for x in xs], dtype=dtype)
        CACHE.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, truth)
        temporary.replace(path)
    info = np.finfo(dtype)
    normal = np.isfinite(truth) & (np.abs(truth) >= info.tiny)
    return truth, normal
