"""The affine layer, defined once by its forward expression, in two shapes of the same math.

Batched rows (what the torch code computes; PyTorch's nn.Linear layout):
    result = input @ weight^T + 1_B bias^T        input: B x n, weight: m x n, bias: m
Column vector (what the theory writes, one sample):
    z = W x + b                                   x: n x 1, W: m x n, b: m x 1

The vector-Jacobian products come from SymPy differentiating the scalar
<grad, result> = trace(grad^T result) with respect to each input. SymPy's matrix derivatives
are in denominator layout: the derivative of a scalar by a matrix has the matrix's shape.
For the batched form that is exactly the layout torch wants (dJ/dweight shaped like weight).
The theory wants numerator layout (an m x n matrix's derivative is n x m); ``per_sample``
transposes SymPy's results to get it, and tests/test_linear.py checks both against
component-wise Jacobians.
"""
from functools import lru_cache

import sympy as sp

B, n, m = sp.symbols("B n m", integer=True, positive=True)

input = sp.MatrixSymbol("input", B, n)
weight = sp.MatrixSymbol("weight", m, n)
bias = sp.MatrixSymbol("bias", m, 1)
grad = sp.MatrixSymbol("grad", B, m)  # dJ/dresult, one numerator-layout row per sample

forward = input * weight.T + sp.OneMatrix(B, 1) * bias.T


def explicit(symbol, sizes):
    """The matrix of component symbols of a MatrixSymbol at the given sizes ({B: 2, ...}),
    for checks by component-wise differentiation."""
    rows, cols = (int(d.subs(sizes)) for d in symbol.shape)
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol("{}_{}_{}".format(symbol.name, i, j), real=True))


@lru_cache(maxsize=None)
def vjp():
    """{name: dJ/dname} for the batched layer, one formula per input (derivatives.yaml style).

    The batch sum over samples is inside the matrix products: dJ/dweight = grad^T input sums
    the per-sample outer products, dJ/dbias = grad^T 1_B sums the rows of grad.
    """
    pairing = sp.Trace(grad.T * forward)
    return {v.name: pairing.diff(v) for v in (input, weight, bias)}


# -- one sample, column vectors, for the theory ---------------------------------------------
x = sp.MatrixSymbol("x", n, 1)
W = sp.MatrixSymbol("W", m, n)
b = sp.MatrixSymbol("b", m, 1)
delta = sp.MatrixSymbol("delta", 1, m)  # dl/dz in numerator layout: a row vector
z = W * x + b


@lru_cache(maxsize=None)
def per_sample():
    """Numerator-layout derivatives of one sample's z = W x + b.

    ``jacobian``: dz/dx, m x n (a row per output). ``vjp``: {x, W, b} -> dl/d(that), given the
    row vector delta = dl/dz: dl/dx = delta W (1 x n), dl/dW = x delta (n x m), dl/db = delta
    (1 x m). Each is the transpose of SymPy's denominator-layout derivative of delta z.
    """
    pairing = sp.Trace(delta * z)
    vjps = {v.name: pairing.diff(v).T for v in (x, W, b)}
    # dz/dx: the derivative of z by x is W^T in SymPy's layout, W in numerator layout.
    jacobian = z.diff(x).T
    return {"jacobian": jacobian, "vjp": vjps}
