"""The Linear layer's derivatives: numerator layout at component level, and the dot-product
test <J t, c> = <t, J^T c> that catches a missing transpose."""
import pytest
import sympy as sp
import torch

from derive import linear
from generated import layers


@pytest.mark.parametrize("m,n", [(1, 1), (2, 3), (3, 2)])
def test_per_sample_derivatives_are_numerator_layout(m, n):
    sizes = {linear.m: m, linear.n: n}
    x, W, b, delta = (linear.explicit(s, sizes) for s in (linear.x, linear.W, linear.b, linear.delta))
    z = W * x + b
    subs = {linear.x.subs(sizes): x, linear.W.subs(sizes): W, linear.b.subs(sizes): b,
            linear.delta.subs(sizes): delta}
    ps = linear.per_sample()
    # dz/dx: a row per output, m x n.
    assert sp.Matrix(ps["jacobian"].subs(sizes).subs(subs).doit()) == z.jacobian(x)
    loss = (delta * z)[0, 0]  # any l with dl/dz = delta
    # dl/dx: 1 x n row; dl/db: 1 x m row; dl/dW: n x m, entry (j, i) = dl/dW_ij.
    assert sp.Matrix(ps["vjp"]["x"].subs(sizes).subs(subs).doit()) == sp.Matrix([loss]).jacobian(x)
    assert sp.Matrix(ps["vjp"]["b"].subs(sizes).subs(subs).doit()) == sp.Matrix([loss]).jacobian(b)
    dW = sp.Matrix(ps["vjp"]["W"].subs(sizes).subs(subs).doit())
    assert dW.shape == (n, m)
    assert dW == sp.Matrix(n, m, lambda j, i: sp.diff(loss, W[i, j]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 3, 5), (33, 17, 9)])
def test_dot_product_test(shape, dtype):
    """<J t, c> = <t, J^T c> with J the Jacobian of linear_forward at (x, W, b): the forward
    applied to a tangent (tx, tW, tb) is J t, the generated backward applied to c is J^T c."""
    batch, n_in, n_out = shape
    g = torch.Generator().manual_seed(7)
    x, W, b = (torch.randn(*s, generator=g, dtype=dtype) for s in ((batch, n_in), (n_out, n_in), (n_out,)))
    tx, tW, tb = (torch.randn(*s, generator=g, dtype=dtype) for s in ((batch, n_in), (n_out, n_in), (n_out,)))
    c = torch.randn(batch, n_out, generator=g, dtype=dtype)
    # The layer is bilinear in (x, W) plus b: its Jacobian-vector product is
    # tx W^T + x tW^T + tb.
    jvp = tx @ W.t() + x @ tW.t() + tb
    lhs = (jvp * c).sum()
    rhs = ((tx * layers.linear_backward_input(c, W)).sum() + (tW * layers.linear_backward_weight(c, x)).sum()
           + (tb * layers.linear_backward_bias(c)).sum())
    tol = 1e-10 if dtype == torch.float64 else 1e-3
    assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs.item()))


def test_dot_product_test_catches_a_missing_transpose():
    g = torch.Generator().manual_seed(8)
    W = torch.randn(3, 3, generator=g, dtype=torch.float64)
    tx, c = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    lhs = ((tx @ W.t()) * c).sum()
    wrong = (tx * (c @ W.t())).sum()  # grad @ W^T instead of grad @ W
    assert abs(lhs - (tx * layers.linear_backward_input(c, W)).sum()) < 1e-10
    assert abs(lhs - wrong) > 1e-3
