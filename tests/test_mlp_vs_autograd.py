"""mlp.py against torch autograd: every f x g pair, both losses, shapes, dtypes, extremes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mlp
from autograd_reference import compare_mlp
from derive import activations

NAMES = [a.name for a in activations.ACTIVATIONS]
# Every pair is many cases: the pairs take every name as f and as g, each at least once
# beside each of the course's seven (the rest of the square is in the property test).
COURSE = ["identity", "relu", "sigmoid", "tanh", "leaky_relu", "softplus", "gelu"]
PAIRS = sorted({(f, g) for f in NAMES for g in COURSE} | {(f, g) for f in COURSE for g in NAMES})
SHAPES = [(1, 1, 1, 1), (10, 2, 20, 5), (10, 2, 70, 5), (70, 30, 40, 60), (256, 64, 128, 32)]


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.mark.parametrize("f,g", PAIRS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_pair_with_mse(f, g, dtype):
    for shape in SHAPES[:4]:
        compare_mlp(f, g, "mse", shape, dtype)


@pytest.mark.parametrize("f", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_f_with_sigmoid_and_bce(f, dtype):
    for shape in SHAPES[:4]:
        compare_mlp(f, "sigmoid", "bce", shape, dtype)


@pytest.mark.parametrize("shape", SHAPES)
def test_shapes_course_combinations(shape):
    compare_mlp("relu", "identity", "mse", shape, torch.float32)
    compare_mlp("relu", "relu", "mse", shape, torch.float32)
    compare_mlp("sigmoid", "relu", "mse", shape, torch.float32)
    compare_mlp("relu", "sigmoid", "bce", shape, torch.float32)
    compare_mlp("sigmoid", "sigmoid", "bce", shape, torch.float32)


@pytest.mark.parametrize("f,g,loss", [(f, g, "mse") for f, g in PAIRS] + [(f, "sigmoid", "bce") for f in NAMES])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_preactivations(f, g, loss, dtype):
    """|z| up to 1e4 in both layers: every value finite and equal to autograd."""
    x = torch.tensor([[1.0, -1.0], [0.5, 0.25], [-1.0, 1.0]])
    weights = {"W1": torch.tensor([[1e4, 0.0], [-1e4, 0.0], [0.0, 0.0]]), "b1": torch.zeros(3),
               "W2": torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]), "b2": torch.zeros(2)}
    if activations.BY_NAME[g].unbounded and loss == "mse":
        y = torch.tensor([[1e4, -1e4], [0.0, 0.0], [1.0, 1.0]])
    else:
        y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # The gradients here are sums of terms of size ~1e4 that may cancel: in float32 their
    # rounding error is ~1e-7 of 1e4, so the course's 1e-3 is applied relative to 1e4.
    floor = 1e4 if dtype == torch.float32 else 1e-2
    net, (J, y_hat, dJdy_hat) = compare_mlp(f, g, loss, (3, 2, 3, 2), dtype, x=x, y=y, weights=weights,
                                            scale_floor=floor)
    for t in (J, y_hat, dJdy_hat, *net.grads.values()):
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu_derivative_at_zero_is_zero(dtype):
    """Exact zeros and ties: ReLU'(0) = 0 (not SymPy's Heaviside(0) = 1/2), as autograd."""
    x = torch.zeros(4, 3)
    net, _ = compare_mlp("relu", "relu", "mse", (4, 3, 5, 2), dtype, x=x,
                         weights={"b1": torch.zeros(5), "b2": torch.zeros(2)})
    assert torch.count_nonzero(net.grads["dJdb1"]) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bce_at_saturated_outputs(dtype):
    """y_hat exactly 0 and 1: the log clamp (-100) and the 1e-12 denominator, as PyTorch."""
    x = torch.tensor([[1.0], [-1.0]])
    weights = {"W1": torch.tensor([[1.0]]), "b1": torch.zeros(1), "W2": torch.tensor([[1e4], [-1e4]]),
               "b2": torch.zeros(2)}
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    _, (J, y_hat, dJdy_hat) = compare_mlp("identity", "sigmoid", "bce", (2, 1, 1, 2), dtype, x=x, y=y,
                                           weights=weights)
    assert set(y_hat.flatten().tolist()) <= {0.0, 1.0}
    assert torch.isfinite(J) and torch.isfinite(dJdy_hat).all()


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 12), n_in=st.integers(1, 9), hidden=st.integers(1, 9), n_out=st.integers(1, 9),
       f=st.sampled_from(NAMES), g=st.sampled_from(NAMES), loss=st.sampled_from(["mse", "bce"]),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**16))
def test_property_random_networks(batch, n_in, hidden, n_out, f, g, loss, dtype, seed):
    torch.manual_seed(seed)
    compare_mlp(f, "sigmoid" if loss == "bce" else g, loss, (batch, n_in, hidden, n_out), dtype)


def test_no_autograd_graph_and_grad_mode_off():
    """The manual path builds no graph even for inputs that require grad, and runs with
    grad mode off."""
    net = mlp.MLP(3, 4, "tanh", 4, 2, "sigmoid")
    x = torch.randn(5, 3, requires_grad=True)
    y_hat = net.forward(x)
    J, dJdy_hat = mlp.bce_loss((torch.rand(5, 2) < 0.5) * 1.0, y_hat)
    net.backward(dJdy_hat)
    assert y_hat.grad_fn is not None  # x requires grad, so torch records; nothing of ours reads it
    with torch.no_grad():
        net.clear_grad_and_cache()
        y_hat = net.forward(x.detach())
        J, dJdy_hat = mlp.bce_loss((torch.rand(5, 2) < 0.5) * 1.0, y_hat)
        net.backward(dJdy_hat)
    assert all(t.grad_fn is None for t in net.grads.values())
    assert x.grad is None


def test_course_script_style_prints_true():
    """The course's own check, line for line: (a - b).norm() < 1e-3 in float32."""
    torch.manual_seed(1)
    net, _ = compare_mlp("relu", "identity", "mse", (10, 2, 20, 5), torch.float32)
