"""Each generated layer function against torch autograd, and SymPy's numerator-layout
Jacobians against torch.autograd.functional.jacobian."""
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from autograd_reference import TORCH_ACTIVATIONS, assert_close, compare_activation
from derive import activations, linear, losses
from derive.functions import expand_element_sums
from derive.symbols import input as z_symbol
from generated import layers

NAMES = [a.name for a in activations.ACTIVATIONS]
EXTREMES = [-1e4, -1e3, -88.8, -30.0, -20.0, -1.0, -1e-7, -0.0, 0.0, 1e-7, 1.0, 19.999, 20.0, 20.001, 30.0, 88.8,
            1e3, 1e4]
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_random(name, dtype):
    compare_activation(name, torch.randn(7, 5, generator=torch.Generator().manual_seed(3)).to(dtype) * 4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_extremes(name, dtype):
    compare_activation(name, torch.tensor([EXTREMES], dtype=dtype))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_width_one(name, dtype):
    compare_activation(name, torch.tensor([[0.3]], dtype=dtype))


def _ours(name, z, grad):
    a = layers.ACTIVATIONS[name]
    result = a["forward"](z)
    saved = {"input": z, "result": result}
    return result, a["backward"](grad, **{k: saved[k] for k in a["saves"]})


def _autograd(name, z, grad):
    leaf = z.clone().requires_grad_()
    with torch.enable_grad():
        result = TORCH_ACTIVATIONS[name](leaf)
        result.backward(grad)
    return result.detach(), leaf.grad


@pytest.mark.parametrize("name", NAMES)
def test_activation_nan_as_autograd(name):
    """A NaN input gives a NaN result, and the backward autograd's value, NaN or not (a
    masked backward such as hardsigmoid's gives 0 there, whatever grad is)."""
    z = torch.tensor([[float("nan"), 1.0]], dtype=torch.float64)
    grad = torch.tensor([[float("nan"), 1.0]], dtype=torch.float64)
    (result, ours), (ref, theirs) = _ours(name, z, grad), _autograd(name, z, grad)
    assert torch.isnan(result[0, 0]) and torch.isnan(ref[0, 0])
    assert torch.allclose(ours, theirs, equal_nan=True), (ours, theirs)


def _kink_points(row):
    return [float(p) for p in row.kink_values]


@pytest.mark.parametrize("row", activations.ACTIVATIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_kink_values_match_torch_exactly(row, dtype):
    """At each kink the row states (softplus's threshold 20 among them): the value autograd
    gives, to the last few ulps (the branch taken is the same; a wrong branch at 20 is off
    by 2e-9), and the row's stated value is autograd's. At 0 and -0 too, to 1e-7: PyTorch's
    float64 hardsigmoid backward multiplies by a float32 1/6."""
    for points, rtol in ((_kink_points(row), 1e-14), ([0.0, -0.0], 1e-7)):
        z = torch.tensor(points, dtype=dtype)
        ones = torch.ones_like(z)
        _, ours = _ours(row.name, z, ones)
        _, theirs = _autograd(row.name, z, ones)
        rtol = rtol if dtype == torch.float64 else max(rtol, 1e-6)
        assert torch.allclose(ours, theirs, rtol=rtol, atol=0), (points, ours, theirs)
    for point, value in row.kink_values.items():
        one = torch.ones(1, dtype=torch.float64)
        _, at = _autograd(row.name, one * float(point), one)
        assert abs(at.item() - float(value)) <= 1e-14 * max(1.0, abs(float(value))), (row.name, point, value, at)


@pytest.mark.parametrize("row", [a for a in activations.ACTIVATIONS if a.at_nan is not None], ids=lambda a: a.name)
def test_stated_nan_convention_is_autograds(row):
    z = torch.tensor([float("nan")], dtype=torch.float64)
    _, at = _autograd(row.name, z, torch.ones(1, dtype=torch.float64))
    if row.at_nan == "nan":
        assert torch.isnan(at).all()
    else:
        assert at.item() == pytest.approx(float(row.nan_value), rel=1e-14)


@pytest.mark.parametrize("row", activations.ACTIVATIONS, ids=lambda a: a.name)
def test_unbounded_field_is_true(row):
    """``unbounded`` (the tests choose large regression targets by it) is what f does."""
    far = max(abs(float(row.forward.subs(z_symbol, v))) for v in (-10**6, 10**6))
    assert row.unbounded == (far > 10**5), (row.name, far)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_kinks_and_around(name, dtype):
    """The kinks of every row (a kink of one is an ordinary point of another), and the
    floats just beside them."""
    points = sorted({p for row in activations.ACTIVATIONS for p in _kink_points(row)})
    z = torch.tensor(points, dtype=dtype)
    up, down = torch.nextafter(z, z + 1), torch.nextafter(z, z - 1)
    compare_activation(name, torch.stack([z, up, down]))


@pytest.mark.parametrize("name", NAMES)
def test_sympy_jacobian_equals_torch_jacobian(name):
    """The raw SymPy Jacobian, numerator layout (a row per output), at random points."""
    a = activations.BY_NAME[name]
    jacobian, z = a.jacobian(3)
    point = [-1.3, 0.4, 2.2]
    ours = torch.tensor(jacobian.subs(dict(zip(z, point))).evalf().tolist(), dtype=torch.float64)
    theirs = torch.autograd.functional.jacobian(TORCH_ACTIVATIONS[name], torch.tensor(point, dtype=torch.float64))
    # 1e-7: PyTorch's float64 hardsigmoid backward multiplies by a float32 1/6.
    assert torch.allclose(ours, theirs, rtol=1e-7, atol=1e-12)


def test_linear_jacobian_numerator_layout_equals_torch():
    """dz/dx for z = W x + b is W (m x n, a row per output), as torch's jacobian lays it."""
    W = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    theirs = torch.autograd.functional.jacobian(lambda x: W @ x + b, torch.randn(4, dtype=torch.float64))
    jac = linear.per_sample()["jacobian"]
    sizes = {linear.m: 3, linear.n: 4}
    ours = torch.tensor(sp.Matrix(jac.subs(sizes).subs({linear.W.subs(sizes): sp.Matrix(W.tolist())}).doit())
                        .evalf().tolist(), dtype=torch.float64)
    assert torch.allclose(ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 2), (64, 30, 7)])
def test_linear_layer(dtype, shape):
    batch, n_in, n_out = shape
    gen = torch.Generator().manual_seed(1)
    x, W, b = (torch.randn(*s, generator=gen, dtype=dtype) for s in ((batch, n_in), (n_out, n_in), (n_out,)))
    grad = torch.randn(batch, n_out, generator=gen, dtype=dtype)
    leaves = [t.clone().requires_grad_() for t in (x, W, b)]
    with torch.enable_grad():
        ref = F.linear(*leaves)
        ref.backward(grad)
    assert_close(layers.linear_forward(x, W, b), ref.detach(), "linear forward")
    assert_close(layers.linear_backward_input(grad, W), leaves[0].grad, "dJ/dinput")
    assert_close(layers.linear_backward_weight(grad, x), leaves[1].grad, "dJ/dweight")
    assert_close(layers.linear_backward_bias(grad), leaves[2].grad, "dJ/dbias")


LOSS_CASES = [
    ("mse", torch.randn(6, 4), torch.randn(6, 4)),
    ("mse", torch.tensor([[1e4, -1e4]]), torch.tensor([[-1e4, 0.0]])),
    ("bce", torch.rand(6, 4), (torch.rand(6, 4) < 0.5) * 1.0),
    ("bce", torch.tensor([[0.0, 1.0, 0.0, 1.0, 1e-30, 1 - 1e-7]]), torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]])),
    ("bce", torch.tensor([[0.3]]), torch.tensor([[0.25]])),  # soft targets are allowed
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(LOSS_CASES)))
def test_loss(case, dtype):
    kind, y_hat, y = LOSS_CASES[case]
    y_hat, y = y_hat.to(dtype), y.to(dtype)
    forward = {"mse": layers.mse_loss_forward, "bce": layers.bce_loss_forward}[kind]
    backward = {"mse": layers.mse_loss_backward, "bce": layers.bce_loss_backward}[kind]
    torch_loss = {"mse": F.mse_loss, "bce": F.binary_cross_entropy}[kind]
    leaf = y_hat.clone().requires_grad_()
    with torch.enable_grad():
        ref = torch_loss(leaf, y)
        ref.backward()
    assert_close(forward(y_hat, y), ref.detach(), kind + " forward")
    assert_close(backward(y_hat, y), leaf.grad, kind + " backward")
    assert torch.isfinite(forward(y_hat, y)) and torch.isfinite(backward(y_hat, y)).all()


def test_loss_reductions_are_one_expression():
    """The handout's per-sample losses and PyTorch's mean come from the same expression."""
    K = 3
    ys, ts = sp.symbols("yhat_0:3"), sp.symbols("t_0:3")
    mse = losses.BY_NAME["mse_loss"]
    handout = mse.expression("sum", safe=False).subs(losses.numel, K).doit()
    handout = expand_element_sums(handout, [{z_symbol: y, losses.target: t} for y, t in zip(ys, ts)])
    assert sp.expand(handout - sum((y - t) ** 2 for y, t in zip(ys, ts))) == 0
    assert losses.Loss.scale("mean", K) == sp.Rational(1, K)
    with pytest.raises(ValueError, match="reduction"):
        losses.Loss.scale("none")


def test_bce_gradient_at_saturation_meets_the_courses_absolute_tolerance():
    """Where y_hat saturates (~1e-8) the gradient is ~1e6 and one float32 ulp exceeds the
    course's absolute 1e-3: the generated backward must round as PyTorch does, multiplying
    by 1/N first and dividing by the clamped denominator last."""
    g = torch.Generator().manual_seed(11)
    for _ in range(20):
        y_hat = torch.sigmoid(torch.randn(10, 5, generator=g) * 12)
        y = (torch.rand(10, 5, generator=g) < 0.5) * 1.0
        leaf = y_hat.clone().requires_grad_()
        with torch.enable_grad():
            F.binary_cross_entropy(leaf, y).backward()
        assert (layers.bce_loss_backward(y_hat, y) - leaf.grad).norm() < 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_backward_at_a_nan_input_with_a_finite_grad_is_autograds(name):
    """autograd's ReLU passes grad through where its result is NaN (threshold_backward's
    `result <= 0 ? 0 : grad`); the generated backward does the same, for every activation."""
    z = torch.tensor([float("nan"), -1.0, 2.0], dtype=torch.float64)
    grad = torch.tensor([3.0, 3.0, 3.0], dtype=torch.float64)
    a = layers.ACTIVATIONS[name]
    saved = {"input": z, "result": a["forward"](z)}
    ours = a["backward"](grad, **{k: saved[k] for k in a["saves"]})
    leaf = z.clone().requires_grad_()
    with torch.enable_grad():
        TORCH_ACTIVATIONS[name](leaf).backward(grad)
    assert torch.allclose(ours, leaf.grad, equal_nan=True), (ours, leaf.grad)
