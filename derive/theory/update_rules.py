"""1.4: each loss derived from the update rule w_i <- w_i + eta (y - yhat) x_i.

The rule is gradient descent on a loss L with dL/dw_i = -(y - yhat) x_i, i.e. dL/ds =
-(y - yhat(s)) for s = b + sum_i w_i x_i: SymPy integrates it in s, and the tests
differentiate the result back to the update rule.
"""
from dataclasses import dataclass
from functools import lru_cache

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
    closed_form: sp.Expr  # equal to the integral + constant for y in {-1, +1}
    closed_note: str


ALGORITHMS = (
    Algorithm("perceptron", "Perceptron", sp.sign(s), r"\operatorname{sign}(s)", sp.S.Zero,
              2 * sp.Max(0, -yy * s),
              r"the perceptron criterion (twice it; the factor 2 only rescales $\eta$)"),
    Algorithm("adaline", r"Adaline / Least Mean Squares", s, "s", yy**2 / 2, (yy - s) ** 2 / 2,
              "half the squared error"),
    Algorithm("logistic", "Logistic Regression", sp.tanh(s), r"\tanh(s)", sp.log(2),
              sp.log(1 + sp.exp(-2 * yy * s)),
              r"the logistic loss of the margin $2ys$"),
)


@lru_cache(maxsize=None)
def loss_derivation(alg):
    """dL/ds = -(y - yhat(s)); L = integral + constant. Returns the pieces the text shows."""
    dL_ds = -(yy - alg.inference)
    integral = sp.integrate(dL_ds, s)
    if alg.key == "perceptron":
        # SymPy gives a Piecewise in the sign of s; for real s it is |s| - y s.
        simple = sp.Abs(s) - yy * s
        for p in (-2, sp.Rational(-1, 3), sp.Rational(1, 2), 3):
            assert (integral - simple).subs(s, p) == 0
        integral = simple
    elif alg.key == "logistic":
        integral = -yy * s + sp.log(sp.cosh(s))  # = s - log(1 + tanh s) - y s, see tests
    loss = integral + alg.constant
    return {"dL_ds": dL_ds, "integral": integral, "loss": loss}


def algorithm_context(alg):
    d = loss_derivation(alg)
    yh = sp.Symbol("yhat", real=True)
    return {
        "key": alg.key, "title": alg.title, "inference": alg.inference_tex,
        "dL_ds": latex(d["dL_ds"].subs(alg.inference, yh) if alg.key != "adaline" else d["dL_ds"]),
        "dL_ds_s": latex(d["dL_ds"]),
        "integral": latex(d["integral"]),
        "constant": latex(alg.constant),
        "loss": latex(d["loss"]),
        "closed": latex(alg.closed_form),
        "closed_note": alg.closed_note,
        "back": latex(sp.diff(d["loss"], s).subs(sp.sinh(s) / sp.cosh(s), sp.tanh(s))),
    }
