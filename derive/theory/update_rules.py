"""1.4: each loss derived from the update rule w_i <- w_i + eta (y - yhat) x_i.

The rule is gradient descent on a loss L with dL/dw_i = -(y - yhat) x_i, i.e. dL/ds =
-(y - yhat(s)) for s = b + sum_i w_i x_i: SymPy integrates it in s, and the tests
differentiate the result back to the update rule. Every algorithm is one row, handled the
same way; where SymPy's antiderivative reads badly, the row gives a shorter one
(``integral_form``), which is checked equal to SymPy's.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import sympy as sp

from derive.latex_printer import latex

s, eta, yy = sp.Symbol("s", real=True), sp.Symbol("eta", positive=True), sp.Symbol("y", real=True)
bias, w_i, x_i = sp.symbols("b w_i x_i", real=True)
LABELS = (-1, 1)


@dataclass(frozen=True)
class Algorithm:
    key: str
    title: str
    inference: sp.Expr  # yhat as a function of s = b + sum_i w_i x_i
    inference_tex: str
    constant: sp.Expr  # the integration constant the text chooses
    closed_form: sp.Expr  # equal to the integral + constant (for y in {-1, +1} where it says so)
    closed_note: str
    # SymPy's antiderivative, written shorter; checked equal to it (not up to a constant).
    integral_form: Optional[sp.Expr] = None
    # A remark after step 2 of the derivation, if any.
    remark: str = ""


ALGORITHMS = (
    Algorithm("perceptron", "Perceptron", sp.sign(s), r"\operatorname{sign}(s)", sp.S.Zero,
              2 * sp.Max(0, -yy * s),
              r"the perceptron criterion (twice it; the factor 2 only rescales $\eta$)",
              integral_form=sp.Abs(s) - yy * s,  # SymPy: a Piecewise in the sign of s
              remark=r"The update uses $\hat{y}$ itself, not the derivative of $\operatorname{sign}$, "
                     r"which is $0$ almost everywhere."),
    Algorithm("adaline", r"Adaline / Least Mean Squares", s, "s", yy**2 / 2, (yy - s) ** 2 / 2,
              "half the squared error"),
    Algorithm("logistic", "Logistic Regression", sp.tanh(s), r"\tanh(s)", sp.log(2),
              sp.log(1 + sp.exp(-2 * yy * s)),
              r"the logistic loss of the margin $2ys$"),
)

# Where the derivation checks an equality numerically: both signs of s, at the labels y in
# {-1, +1} and at values of y that are no label.
S_POINTS = (-2.5, -0.3, 0.4, 1.7)
AT_LABELS = [{s: sv, yy: label} for label in LABELS for sv in S_POINTS]
AT_OTHER_Y = [{s: sv, yy: yv} for yv in (-0.6, 0.3, 2.5) for sv in S_POINTS]


def _equal_at_points(a, b, points=AT_LABELS + AT_OTHER_Y):
    # One compiled function for all the points: substituting and evalf-ing each point costs
    # twenty times as much.
    difference = sp.lambdify((s, yy), a - b, modules="mpmath")
    return all(abs(difference(at[s], at[yy])) < 1e-12 for at in points)


@lru_cache(maxsize=None)
def loss_derivation(alg):
    """dL/ds = -(y - yhat(s)); L = integral + constant. Returns the pieces the text shows."""
    dL_ds = -(yy - alg.inference)
    # manual: integration by the rules a student uses (SymPy's manualintegrate), which gives
    # log(cosh s) for tanh where the default algorithms give s - log(1 + tanh s), at a tenth
    # of the time; tests/test_theory.py checks it against the default integral.
    integral = sp.integrate(dL_ds, s, manual=True)
    if alg.integral_form is not None:
        if not _equal_at_points(alg.integral_form, integral):
            raise ValueError("{}: {} is not SymPy's integral {}".format(alg.key, alg.integral_form, integral))
        integral = alg.integral_form
    loss = integral + alg.constant
    # The closed form holds for every y, or only for the labels y in {-1, +1}.
    everywhere = _equal_at_points(loss, alg.closed_form)
    if not everywhere and not _equal_at_points(loss, alg.closed_form, AT_LABELS):
        raise ValueError("{}: the closed form {} is not the loss {}".format(alg.key, alg.closed_form, loss))
    return {"dL_ds": dL_ds, "integral": integral, "loss": loss, "closed_for_labels": not everywhere}


def algorithm_context(alg):
    d = loss_derivation(alg)
    yh = sp.Symbol("yhat", real=True)
    return {
        "title": alg.title, "inference": alg.inference_tex,
        "dL_ds": latex(d["dL_ds"].subs(alg.inference, yh)),
        "dL_ds_s": latex(d["dL_ds"]),
        "integral": latex(d["integral"]),
        "constant": latex(alg.constant),
        "loss": latex(d["loss"]),
        "closed": latex(alg.closed_form),
        "closed_for_labels": d["closed_for_labels"],
        "closed_note": alg.closed_note,
        "remark": alg.remark,
        "back": latex(sp.diff(d["loss"], s).subs(sp.sinh(s) / sp.cosh(s), sp.tanh(s))),
    }
