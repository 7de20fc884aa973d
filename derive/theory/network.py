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

import sympy as sp
from sympy.core.symbol import Str
from sympy.matrices.expressions.matexpr import MatrixExpr

from derive import activations, linear, losses
from derive.symbols import input, result, target
from derive.theory import readable

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
# The upstream rows of the two linear layers.
dl_dz3, dl_dz1 = sp.MatrixSymbol("dl_dz3", 1, K), sp.MatrixSymbol("dl_dz1", 1, m)
PARAMETERS = (W1, b1, W2, b2)

# Scalars for the elements of 1.2(d).
i, j = sp.symbols("i j", integer=True, positive=True)
z1_i, z2_i, z3_i = sp.symbols("z1_i z2_i z3_i", real=True)
yhat_i, yhat_j, y_j = sp.symbols("yhat_i yhat_j y_j", real=True)


class Elementwise(MatrixExpr):
    """``role`` (f or g) = activation ``name`` applied to every entry of ``arg``; with
    ``order`` 1, its derivative. ``name`` "" leaves the map unspecified (the f and g of 1.1).
    Explicit (``as_explicit``) once ``arg`` is. Printed by derive.latex_printer."""

    variable = input  # the scalar the activation's formulas are written in

    def __new__(cls, role, name, arg, order=0):
        role, name = (Str(v) if isinstance(v, str) else v for v in (role, name))
        return super().__new__(cls, role, name, arg, sp.Integer(order))

    role = property(lambda self: self.args[0].name)
    activation = property(lambda self: activations.BY_NAME.get(self.args[1].name))
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


# -- the three settings of 1.2, 1.3(a), 1.3(b) ----------------------------------------------
@dataclass(frozen=True)
class Case:
    key: str
    question: str  # where the theory answers it
    f: str
    g: str
    loss: str
    reduction: str  # "sum": ||yhat - y||^2; "mean": (1/K) sum_i
    # Shown after dl/dyhat when set: the entry of dl/dz3 = dl/dyhat dyhat/dz3, and why it matters.
    dl_dz3_remark: str = ""

    @property
    def loss_obj(self):
        return losses.BY_NAME[self.loss]


CASES = (
    Case("regression", "1.2", "scaled_relu", "identity", "mse_loss", "sum"),
    Case("classification_mse", "1.3(a)", "tanh", "sigmoid", "mse_loss", "sum"),
    Case("classification_bce", "1.3(b)", "tanh", "sigmoid", "bce_loss", "mean",
         dl_dz3_remark="the factor $g'$ cancels, so the gradient no longer vanishes where the sigmoid "
                       "saturates: the reason BCE suits a sigmoid output better than MSE"),
)
CASE = {c.key: c for c in CASES}


def forward(case):
    """[(layer, input, output)] for one sample, in x, y, W1, b1, W2, b2 only."""
    a1 = sp.MatAdd(sp.MatMul(W1, x), b1)
    a2 = Elementwise("f", case.f, a1)
    a3 = sp.MatAdd(sp.MatMul(W2, a2), b2)
    a4 = Elementwise("g", case.g, a3)
    return [("Linear_1", x, a1), ("f", a1, a2), ("Linear_2", a2, a3), ("g", a3, a4)]


def composition(sample=x):
    """yhat = g(W2 f(W1 x + b1) + b2) with f and g left unspecified."""
    return Elementwise("g", "", sp.MatAdd(sp.MatMul(W2, Elementwise("f", "", sp.MatAdd(sp.MatMul(W1, sample), b1))),
                                          b2))


def _layer_vjp(x_, W_, b_, delta_):
    """derive.linear.per_sample()'s VJPs of one z = W x + b, at these arguments."""
    at = {linear.x: x_, linear.W: W_, linear.b: b_, linear.delta: delta_}
    return {k: _flat(v.xreplace(at)) for k, v in linear.per_sample()["vjp"].items()}


def chain():
    """The upstream rows the two linear layers receive, each in the one after it:
    dl/dz3 = dl/dyhat dyhat/dz3 and dl/dz1 = dl/dz3 W2 dz2/dz1."""
    return {dl_dz3: dl_dyhat * dyhat_dz3, dl_dz1: _flat(_layer_vjp(z2, W2, b2, dl_dz3)["x"] * dz2_dz1)}


def backward(case):
    """{parameter: dl/dparameter} in numerator layout, in the variables 1.2(c) allows.

    Composed from derive.linear.per_sample(): layer 2 receives dl/dz3 = dl/dyhat dyhat/dz3
    and passes dl/dz2 = dl/dz3 W2 down; layer 1 receives dl/dz1 = dl/dz2 dz2/dz1.
    """
    z2_value = forward(case)[1][2]
    second = _layer_vjp(z2_value, W2, b2, chain()[dl_dz3])
    first = _layer_vjp(x, W1, b1, second["x"] * dz2_dz1)
    return {W1: first["W"], b1: first["b"], W2: second["W"], b2: second["b"]}


def _flat(expr):
    """One flat product, so that the printer writes no parentheses that mean nothing."""
    if isinstance(expr, sp.MatMul):
        factors = []
        for f in expr.args:
            factors.extend(_flat(f).args if isinstance(_flat(f), sp.MatMul) else [_flat(f)])
        return sp.MatMul(*factors)
    return expr


def derivative_forms(a, at, out):
    """Equal spellings of f'(at), the first in the input and named functions (readable), the
    next in terms of the output ``out`` where the code writes it so (sigma(z)(1 - sigma(z)) =
    yhat (1 - yhat)). A kink's conditions read best on the input: no second form there."""
    forms = [readable.derivative(a).subs(input, at)]
    if result in a.derivative.free_symbols and not isinstance(sp.piecewise_fold(a.derivative), sp.Piecewise):
        forms.append(a.derivative.subs({result: out, input: at}))
    return forms


def jacobian(role, name, arg):
    """d role(arg) / d arg: diag(role'(arg)), or c I when the derivative is a constant c."""
    d = readable.derivative(activations.BY_NAME[name])
    if d.is_number:
        return d * sp.Identity(arg.shape[0]) if d != 1 else sp.Identity(arg.shape[0])
    return sp.DiagMatrix(Elementwise(role, name, arg, 1))


def kinks(a):
    """[(point, value)]: where f' jumps (a Piecewise condition on the input against a number),
    and the value taken there (PyTorch's convention, the row's choice)."""
    d = sp.piecewise_fold(readable.derivative(a))
    if not isinstance(d, sp.Piecewise):
        return []
    points = sorted({c.rhs for _, c in d.args if c != sp.true and c.lhs == input and c.rhs.is_number})
    return [(p, d.subs(input, p)) for p in points]


def elements(case):
    """The elements of dz2/dz1, dyhat/dz3 (diagonal: delta_ij times the scalar) and
    dl/dyhat (entry j), as scalar expressions in z_{1,i}, z_{3,i}, yhat_j, y_j; and the entry
    j of dl/dz3 = dl/dyhat dyhat/dz3."""
    f, g, loss = activations.BY_NAME[case.f], activations.BY_NAME[case.g], case.loss_obj
    scale = loss.scale(case.reduction, K)
    # factor_terms keeps a number outside a sum: 2 (yhat_j - y_j), which SymPy's Mul distributes.
    dl = sp.factor_terms(scale * readable.without_clamps(loss.derivative).subs({input: yhat_j, target: y_j}))
    g_prime_j = derivative_forms(g, z3_i, yhat_i)[-1].subs({yhat_i: yhat_j, z3_i: sp.Symbol("z3_j", real=True)})
    return {
        "dz2_dz1": derivative_forms(f, z1_i, z2_i),
        "dyhat_dz3": derivative_forms(g, z3_i, yhat_i),
        "dl_dyhat": dl,
        "dl_dz3": sp.factor_terms(sp.cancel(dl * g_prime_j)),
    }


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


def is_squared_error(loss):
    """Whether the loss's term is (yhat - y)^2, so that its sum is a squared norm."""
    return sp.expand(loss.term - (input - target) ** 2) == 0
