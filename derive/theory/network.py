"""1.1 to 1.3: the two-layer net, its forward and backward pass.

One sample, column vectors, numerator layout (Wikipedia): the derivative of a scalar by a
column vector is a row vector, a vector-by-vector derivative has a row per output, the
derivative of a scalar by an r x c matrix is c x r.

The two-layer net of 1.1, x in R^n, hidden width m, K outputs:

    z1 = W1 x + b1 (m),  z2 = f(z1) (m),  z3 = W2 z2 + b2 (K),  yhat = g(z3) (K).

The backward pass is the chain rule, composed layer by layer from ``derive.linear``'s
per-sample VJPs (the whole-net matrix derivative is not something SymPy 1.14 can do, see
NOTES.md). Every matrix-form answer is a SymPy matrix expression; tests/test_theory.py
instantiates each at small sizes with component symbols and compares it with SymPy's
component-wise derivative.
"""
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr

from derive import activations, linear, losses
from derive.latex_printer import latex, shape
from derive.symbols import input, result, target

# -- the symbols of 1.1 -----------------------------------------------------------------------
n, m, K = sp.symbols("n m K", integer=True, positive=True)
x = sp.MatrixSymbol("x", n, 1)
y = sp.MatrixSymbol("y", K, 1)
W1, b1 = sp.MatrixSymbol("W1", m, n), sp.MatrixSymbol("b1", m, 1)
W2, b2 = sp.MatrixSymbol("W2", K, m), sp.MatrixSymbol("b2", K, 1)
z1, z2, z3 = sp.MatrixSymbol("z1", m, 1), sp.MatrixSymbol("z2", m, 1), sp.MatrixSymbol("z3", K, 1)
yhat = sp.MatrixSymbol("yhat", K, 1)
# The three derivatives 1.2(c) may use, in numerator layout.
dl_dyhat = sp.MatrixSymbol("dl_dyhat", 1, K)
dz2_dz1 = sp.MatrixSymbol("dz2_dz1", m, m)
dyhat_dz3 = sp.MatrixSymbol("dyhat_dz3", K, K)
PARAMETERS = (W1, b1, W2, b2)

# Scalars for the elements of 1.2(d).
i, j = sp.symbols("i j", integer=True, positive=True)
z1_i, z2_i, z3_i = sp.symbols("z1_i z2_i z3_i", real=True)
yhat_i, yhat_j, y_j = sp.symbols("yhat_i yhat_j y_j", real=True)


class Elementwise(MatrixExpr):
    """``role`` (f or g) = activation ``name`` applied to every entry of ``arg``; with
    ``order`` 1, its derivative. Explicit (``as_explicit``) once ``arg`` is."""

    def __new__(cls, role, name, arg, order=0):
        role, name = (Str(v) if isinstance(v, str) else v for v in (role, name))
        return super().__new__(cls, role, name, arg, sp.Integer(order))

    role = property(lambda self: self.args[0].name)
    activation = property(lambda self: activations.BY_NAME[self.args[1].name])
    arg = property(lambda self: self.args[2])
    order = property(lambda self: int(self.args[3]))
    shape = property(lambda self: self.arg.shape)

    def scalar(self):
        a = self.activation
        return a.forward if self.order == 0 else a.raw_derivative

    def _entry(self, i, j, **kwargs):
        return self.scalar().subs(input, self.arg[i, j])

    def doit(self, **hints):
        arg = self.arg.doit(**hints)
        if isinstance(arg, sp.MatrixBase):
            return arg.applyfunc(lambda entry: self.scalar().subs(input, entry))
        return self.func(self.role, self.args[1].name, arg, self.order)

    def _latex_with(self, printer):
        inner = printer._print(self.arg)
        if self.order == 1:
            return r"{}'\!\left({}\right)".format(self.role, inner)
        forward = self.activation.forward
        if forward == input or forward.has(sp.Max):
            # Spelled out: 5 (W x + b)^+, or the argument itself for the identity.
            slot = sp.Symbol("SLOT")
            text = printer._print(forward.subs(input, slot))
            if forward == input:
                return inner
            return text.replace(r"\left(SLOT\right)", r"\left(" + inner + r"\right)")
        return r"{}\left({}\right)".format(self.activation.latex, inner)


# -- the three settings of 1.2, 1.3(a), 1.3(b) ----------------------------------------------
@dataclass(frozen=True)
class Case:
    key: str
    f: str
    g: str
    loss: str
    reduction: str  # "sum": ||yhat - y||^2; "mean": (1/K) sum_i

    @property
    def loss_obj(self):
        return losses.BY_NAME[self.loss]


CASES = (
    Case("regression", "scaled_relu", "identity", "mse_loss", "sum"),
    Case("classification_mse", "tanh", "sigmoid", "mse_loss", "sum"),
    Case("classification_bce", "tanh", "sigmoid", "bce_loss", "mean"),
)
CASE = {c.key: c for c in CASES}


def forward(case):
    """[(layer, input, output)] for one sample, in x, y, W1, b1, W2, b2 only."""
    a1 = sp.MatAdd(sp.MatMul(W1, x), b1)
    a2 = Elementwise("f", case.f, a1)
    a3 = sp.MatAdd(sp.MatMul(W2, a2), b2)
    a4 = Elementwise("g", case.g, a3)
    return [("Linear_1", x, a1), ("f", a1, a2), ("Linear_2", a2, a3), ("g", a3, a4)]


def backward(case):
    """{parameter: dl/dparameter} in numerator layout, in the variables 1.2(c) allows.

    Composed from derive.linear.per_sample(): layer 2 receives dl/dz3 = dl/dyhat dyhat/dz3
    and passes dl/dz2 = dl/dz3 W2 down; layer 1 receives dl/dz1 = dl/dz2 dz2/dz1.
    """
    vjp = linear.per_sample()["vjp"]
    z2_value = forward(case)[1][2]

    def layer(x_, W_, b_, delta_):
        at = {linear.x: x_, linear.W: W_, linear.b: b_, linear.delta: delta_}
        return {k: _flat(v.xreplace(at)) for k, v in vjp.items()}

    second = layer(z2_value, W2, b2, dl_dyhat * dyhat_dz3)
    first = layer(x, W1, b1, second["x"] * dz2_dz1)
    return {W1: first["W"], b1: first["b"], W2: second["W"], b2: second["b"]}


def _flat(expr):
    """One flat product, so that the printer writes no parentheses that mean nothing."""
    if isinstance(expr, sp.MatMul):
        factors = []
        for f in expr.args:
            factors.extend(_flat(f).args if isinstance(_flat(f), sp.MatMul) else [_flat(f)])
        return sp.MatMul(*factors)
    return expr


def elements(case):
    """The elements of dz2/dz1, dyhat/dz3 (diagonal: delta_ij times the scalar) and
    dl/dyhat (entry j), as scalar expressions in z_{1,i}, z_{3,i}, yhat_j, y_j."""
    f, g, loss = activations.BY_NAME[case.f], activations.BY_NAME[case.g], case.loss_obj
    scale = loss.scale(case.reduction, K)
    return {
        "dz2_dz1": _activation_element(f, z1_i, z2_i),
        "dyhat_dz3": _activation_element(g, z3_i, yhat_i),
        "dl_dyhat": scale * loss.raw_derivative.subs({input: yhat_j, target: y_j}),
    }


def readable(expr, variable):
    """A display form of a scalar derivative, equal to it: a fraction with its sign moved so
    that its denominator is positive on (0, 1), as v (1 - v), and the numeric factor kept
    outside a sum (SymPy would distribute 2 (a - b) into 2 a - 2 b)."""
    numerator, denominator = sp.fraction(sp.factor(sp.together(expr)))
    if denominator.subs(variable, sp.Rational(1, 2)).is_negative:
        numerator, denominator = -sp.factor(numerator), -denominator
    coeff, factors = sp.factor(denominator).as_coeff_mul()
    if coeff.is_negative and variable - 1 in factors:
        factors = [1 - variable if f == variable - 1 else f for f in factors]
        coeff = -coeff
    denominator = sp.Mul(coeff, *factors, evaluate=False) if coeff != 1 else sp.Mul(*factors, evaluate=False)
    ncoeff, nrest = sp.factor(numerator).as_coeff_Mul()
    if ncoeff.is_negative and nrest.is_Add:
        ncoeff, nrest = -ncoeff, -nrest
    numerator = sp.Mul(ncoeff, nrest, evaluate=False) if ncoeff not in (1, -1) else ncoeff * nrest
    if denominator == 1:
        return numerator
    return sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)


def _activation_element(a, at, out):
    """f'(at) as the code computes it (PyTorch's value at a kink, or in terms of the
    output ``out``), and SymPy's raw form where that differs and reads well."""
    # A kink's condition reads best on the input (z > 0); a smooth derivative in terms of
    # the output, as the code has it (sigma(z)(1 - sigma(z)) = yhat (1 - yhat)).
    kink = isinstance(sp.piecewise_fold(a.safe_derivative), sp.Piecewise)
    safe = sp.piecewise_fold((a.safe_derivative if kink else a.derivative).subs({input: at, result: out}))
    raw = a.raw_derivative.subs(input, at)
    return {"safe": safe, "raw": None if raw.has(sp.Heaviside) or raw == safe else raw}


def dl_dyhat_matrix(case):
    """dl/dyhat as a matrix expression (a row, 1 x K), when the loss's derivative is affine
    in (yhat, y), as MSE's 2 (yhat - y) is; else None (then the elements are the answer)."""
    loss = case.loss_obj
    d = sp.expand(loss.scale(case.reduction, K) * loss.raw_derivative)
    if not d.is_polynomial(input, target):
        return None
    poly = sp.Poly(d, input, target)
    if poly.total_degree() > 1 or poly.coeff_monomial(1) != 0:
        return None
    a, c = poly.coeff_monomial(input), poly.coeff_monomial(target)
    if a != -c:
        return None
    return sp.MatMul(a, sp.Transpose(sp.MatAdd(yhat, -y)))


# -- LaTeX contexts ---------------------------------------------------------------------------
LAYER_TEX = {"Linear_1": r"\mathrm{Linear}_1", "Linear_2": r"\mathrm{Linear}_2", "f": "f", "g": "g"}
OUTPUT_NAME = {"Linear_1": z1, "f": z2, "Linear_2": z3, "g": yhat}


def _loss_value(case, yhat_value):
    """The loss of one sample in x, y, W, b: (value, where-clause). ||.||^2 for the
    handout's MSE; else the sum over j of the term at yhat_j, with yhat_j spelled out."""
    loss = case.loss_obj
    if case.loss == "mse_loss" and case.reduction == "sum":
        return r"\left\| " + latex(sp.MatAdd(yhat_value, -y)) + r" \right\|^2", None
    term = latex(loss.term.subs({input: yhat_j, target: y_j}))
    value = latex(loss.scale(case.reduction, K)) + r" \sum_{j=1}^{K} \left(" + term + r"\right)"
    return value, r"\hat{y}_j = \left[" + latex(yhat_value) + r"\right]_j"


def forward_context(case):
    rows = []
    for name, inp, out in forward(case):
        rows.append({"layer": LAYER_TEX[name], "input": latex(inp), "output": latex(out),
                     "name": latex(OUTPUT_NAME[name]), "shape": shape(out)})
    loss = case.loss_obj
    value, where = _loss_value(case, forward(case)[-1][2])
    return {"rows": rows, "loss_value": value, "loss_where": where,
            "loss_name": loss.latex, "f": activations.BY_NAME[case.f].latex,
            "g": activations.BY_NAME[case.g].latex}


def backward_context(case):
    grads = backward(case)
    rows = [{"param": latex(p), "value": latex(v), "shape": shape(v), "param_shape": shape(p)}
            for p, v in grads.items()]
    # Check the one structural fact the text states: numerator layout transposes the shape.
    for p, v in grads.items():
        assert v.shape == p.shape[::-1], (p, v.shape)
    return {"rows": rows}


def _element_tex(e, at_tex):
    text = latex(e["safe"])
    if e["raw"] is not None:
        text = latex(e["raw"]) + " = " + text
    return text


def elements_context(case):
    el = elements(case)
    matrix = dl_dyhat_matrix(case)
    return {
        "f": activations.BY_NAME[case.f].latex, "g": activations.BY_NAME[case.g].latex,
        "dz2_dz1": latex(dz2_dz1), "dz2_dz1_shape": shape(dz2_dz1),
        "dz2_dz1_diag": latex(sp.DiagMatrix(Elementwise("f", case.f, z1, 1))),
        "f_prime": _element_tex(el["dz2_dz1"], "z_{1,i}"),
        "dyhat_dz3": latex(dyhat_dz3), "dyhat_dz3_shape": shape(dyhat_dz3),
        "dyhat_dz3_diag": (latex(sp.Identity(K)) if case.g == "identity"
                           else latex(sp.DiagMatrix(Elementwise("g", case.g, z3, 1)))),
        "g_prime": _element_tex(el["dyhat_dz3"], "z_{3,i}"),
        "dl_dyhat": latex(dl_dyhat), "dl_dyhat_shape": shape(dl_dyhat),
        "dl_dyhat_matrix": None if matrix is None else latex(matrix),
        "dl_dyhat_element": latex(readable(el["dl_dyhat"], yhat_j)),
    }


@lru_cache(maxsize=None)
def sigmoid_bce_product():
    """(dl/dyhat dyhat/dz3)_j for sigmoid + BCE (mean over K): the 1/(yhat (1 - yhat))
    cancels against sigma' = yhat (1 - yhat)."""
    el = elements(CASE["classification_bce"])
    return sp.cancel(el["dl_dyhat"] * el["dyhat_dz3"]["safe"].subs(yhat_i, yhat_j))


def case_context(case):
    return {"case": case.key, "forward": forward_context(case), "backward": backward_context(case),
            "elements": elements_context(case)}


# -- 1.3(c): why ReLU helps depth --------------------------------------------------------------
def saturation_context():
    sig, th, relu = (activations.BY_NAME[k] for k in ("sigmoid", "tanh", "relu"))
    at0 = lambda a: a.raw_derivative.subs(input, 0)
    return {"sigmoid_max": latex(at0(sig)), "tanh_max": latex(at0(th)),
            "relu_prime": latex(relu.safe_derivative.subs(input, sp.Symbol("x", real=True)))}
