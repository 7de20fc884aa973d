"""softmax and log_softmax (derive/vector_layers.py), cross_entropy_loss and nll_loss: the
symbolic proofs, the componentwise Jacobian, the generated code against autograd, and the
classification losses' checks on their targets."""
import dataclasses

import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import mlp
from autograd_reference import TORCH_ACTIVATIONS, compare_activation, compare_mlp
from derive import vector_layers
from generated import layers

NAMES = [layer.name for layer in vector_layers.VECTOR_LAYERS]
DTYPES = [torch.float32, torch.float64]
SIZES = range(1, 7)


# -- the derivation -----------------------------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_row_sum_vjp_equals_grad_times_componentwise_jacobian(name, n):
    """The printed VJP (a row-sum form, in result) is grad^T J, J differentiated componentwise
    from exp(z_i) / sum_j exp(z_j): symbolically, at every size 1..6."""
    assert vector_layers.BY_NAME[name].vjp_equals_jacobian(n)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_stable_forward_equals_the_definition(name, n):
    assert vector_layers.BY_NAME[name].stable_forward_equal(n)


def test_the_proof_can_fail():
    """A VJP with the transpose's sign error, or a forward without the shift's compensation,
    is refused by the same proofs."""
    softmax = vector_layers.BY_NAME["softmax"]
    from derive.symbols import grad, result
    wrong = dataclasses.replace(softmax, name="wrong")
    object.__setattr__(wrong, "vjp", result * (grad + vector_layers.RowSum(grad * result)))
    assert not wrong.vjp_equals_jacobian(3)
    unshifted = dataclasses.replace(softmax, name="unshifted")
    object.__setattr__(unshifted, "stable_forward", sp.exp(vector_layers.shifted) / vector_layers.RowSum(
        sp.exp(vector_layers.input)))
    assert not unshifted.stable_forward_equal(2)


def test_make_derive_check_refuses_a_wrong_vjp():
    from derive import checks
    from derive.symbols import grad, result
    softmax = vector_layers.BY_NAME["softmax"]
    checks.check_vector_layer(softmax)
    wrong = dataclasses.replace(softmax, name="wrong")
    object.__setattr__(wrong, "vjp", grad * result)  # the diagonal alone, as if elementwise
    with pytest.raises(checks.DerivationError, match="wrong VJP"):
        checks.check_vector_layer(wrong)


def test_jacobians_are_the_known_closed_forms():
    """diag(s) - s s^T for softmax and I - 1 s^T for log_softmax (numerator layout)."""
    for name, closed in (("softmax", lambda s: sp.diag(*s) - s * s.T),
                         ("log_softmax", lambda s: sp.eye(len(s)) - sp.ones(len(s), 1) * s.T)):
        layer = vector_layers.BY_NAME[name]
        jacobian, z = layer.jacobian(3)
        s = sp.Matrix([vector_layers.BY_NAME["softmax"].component(list(z), i) for i in range(3)])
        assert sp.simplify(jacobian - closed(s)) == sp.zeros(3, 3), name


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_sympy_jacobian_equals_torch_jacobian(name, n):
    jacobian, z = vector_layers.BY_NAME[name].jacobian(n)
    point = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) * 3
    ours = torch.tensor(jacobian.subs(dict(zip(z, point.tolist()))).evalf(20).tolist(), dtype=torch.float64)
    theirs = torch.autograd.functional.jacobian(TORCH_ACTIVATIONS[name], point)
    assert torch.allclose(ours, theirs, rtol=1e-12, atol=1e-14)


# -- the generated code against autograd -------------------------------------------------------
def _logits(batch, width, scale, dtype, seed=0):
    return (torch.randn(batch, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            * scale).to(dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 2, 7, 64])
@pytest.mark.parametrize("width", [1, 3, 10])
def test_layer_against_autograd(name, dtype, batch, width):
    compare_activation(name, _logits(batch, width, 4.0, dtype, seed=batch * width))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from(DTYPES), batch=st.integers(1, 64),
       width=st.integers(1, 16), log_scale=st.floats(-3, 4), seed=st.integers(0, 2 ** 16))
def test_layer_against_autograd_anywhere(name, dtype, batch, width, log_scale, seed):
    """Any batch 1..64, width 1..16 and logit scale 1e-3..1e4."""
    compare_activation(name, _logits(batch, width, 10.0 ** log_scale, dtype, seed=seed))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_at_logits_up_to_1e4(dtype):
    rows = [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4 - 1, -3.0], [0.0, 0.0, 0.0]]
    compare_activation("log_softmax", torch.tensor(rows, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_where_its_probabilities_are_normal(dtype):
    """Logits spread so that the smallest probability is still a normal float of the dtype."""
    spread = 80.0 if dtype == torch.float32 else 700.0
    rows = [[spread / 2, -spread / 2, 0.0], [1e4, 1e4 - spread, 1e4 - 1], [-1e4, -1e4 + spread / 3, -1e4]]
    compare_activation("softmax", torch.tensor(rows, dtype=dtype))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dot_product(name, dtype):
    """<J t, c> = <t, J^T c>: the forward-mode product of the generated forward against the
    generated backward, per row."""
    layer = layers.ACTIVATIONS[name]
    gen = torch.Generator().manual_seed(5)
    z, t, c = (torch.randn(6, 5, generator=gen, dtype=torch.float64).to(dtype) for _ in range(3))
    result, jt = torch.func.jvp(layer["forward"], (z,), (t,))
    jtc = layer["backward"](c, **{k: {"input": z, "result": result}[k] for k in layer["saves"]})
    left, right = (jt * c).sum(1).double(), (t * jtc).sum(1).double()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(left, right, rtol=tol, atol=tol), (left, right)


def test_dot_product_catches_a_transpose():
    """log_softmax's Jacobian I - 1 s^T is not symmetric (softmax's is): J c used in place of
    J^T c, c - rowsum(s * c) instead of c - s * rowsum(c), fails the same test."""
    gen = torch.Generator().manual_seed(5)
    z, t, c = (torch.randn(6, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    result, jt = torch.func.jvp(layers.log_softmax_forward, (z,), (t,))
    transposed = c - (torch.exp(result) * c).sum(1, keepdim=True)
    assert not torch.allclose((jt * c).sum(1), (t * transposed).sum(1), rtol=1e-3, atol=1e-3)


# -- the MLP with the classification losses -----------------------------------------------------
PAIRS = [("softmax", "cross_entropy"), ("log_softmax", "nll")]


@pytest.mark.parametrize("g,loss", PAIRS)
@pytest.mark.parametrize("f", ["relu", "tanh", "identity"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 2, 3, 4), (2, 3, 5, 1), (7, 4, 8, 3), (64, 10, 16, 10)])
def test_mlp_with_classification_loss_against_autograd(f, g, loss, dtype, shape):
    compare_mlp(f, g, loss, shape, dtype)


@pytest.mark.parametrize("f", NAMES)
@pytest.mark.parametrize("g,loss", [("log_softmax", "nll"), ("sigmoid", "bce"), ("identity", "mse")])
@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_layer_as_f_function(f, g, loss, dtype):
    compare_mlp(f, g, loss, (5, 3, 6, 4), dtype)


@pytest.mark.parametrize("g,loss", PAIRS)
def test_soft_targets(g, loss):
    y = torch.softmax(torch.randn(5, 4, dtype=torch.float64), 1)
    compare_mlp("relu", g, loss, (5, 3, 6, 4), torch.float64, y=y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_nll_equals_torch_cross_entropy(dtype):
    """log_softmax + nll_loss is PyTorch's F.cross_entropy on logits (probability targets)."""
    gen = torch.Generator().manual_seed(1)
    z = (torch.randn(9, 4, generator=gen) * 5).to(dtype)
    y = torch.softmax(torch.randn(9, 4, generator=gen), 1).to(dtype)
    result = layers.log_softmax_forward(z)
    J, dJdy_hat = mlp.nll_loss(y, result)
    dJdz = layers.log_softmax_backward(dJdy_hat, result=result)
    leaf = z.clone().requires_grad_()
    with torch.enable_grad():
        ref = F.cross_entropy(leaf, y)
        ref.backward()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(J, ref.detach(), rtol=tol, atol=tol)
    assert torch.allclose(dJdz, leaf.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_nll_finite_at_logits_up_to_1e4(dtype):
    """Both layers' pre-activations reach |z| = 1e4: every value finite and equal to autograd."""
    x = torch.tensor([[1.0, -1.0], [0.5, 0.25], [-1.0, 1.0]])
    weights = {"W1": torch.tensor([[1e4, 0.0], [-1e4, 0.0], [0.0, 1e4]]), "b1": torch.zeros(3),
               "W2": torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), "b2": torch.zeros(3)}
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.25, 0.25, 0.5]])
    floor = 1e4 if dtype == torch.float32 else 1e-2
    net, (J, y_hat, dJdy_hat) = compare_mlp("relu", "log_softmax", "nll", (3, 2, 3, 3), dtype, x=x, y=y,
                                            weights=weights, scale_floor=floor)
    assert y_hat.abs().max() > 1e3  # the test reaches the range it claims
    for value in [J, y_hat, dJdy_hat] + list(net.grads.values()):
        assert torch.isfinite(value).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_where_probabilities_are_normal(dtype):
    """softmax -> cross_entropy_loss -> backward, against autograd of the same composition, with
    logits spread as far as the smallest probability stays a normal float of the dtype (there
    the gradient -y/(batch*p) reaches ~1e35 in float32, finite)."""
    spread = 80.0 if dtype == torch.float32 else 700.0
    z = torch.tensor([[spread / 2, -spread / 2, 0.0], [1e4, 1e4 - spread, 1e4 - 1], [-1e4, -1e4 + spread / 3, -1e4],
                      [0.0, 0.0, 0.0]], dtype=dtype)
    y = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    result = layers.softmax_forward(z)
    assert result.min() >= torch.finfo(dtype).tiny  # the range the test claims
    J, dJdy_hat = mlp.cross_entropy_loss(y, result)
    dJdz = layers.softmax_backward(dJdy_hat, result=result)
    leaf = z.clone().requires_grad_()
    with torch.enable_grad():
        p = torch.softmax(leaf, 1)
        p.retain_grad()
        ref = -(y * torch.clamp(torch.log(p), min=-100)).sum() / z.shape[0]
        ref.backward()
    from autograd_reference import assert_close
    assert_close(J, ref.detach(), "J")
    assert_close(dJdy_hat, p.grad, "dJ/dy_hat")
    assert_close(dJdz, leaf.grad, "dJ/dz")
    assert torch.isfinite(dJdy_hat).all() and torch.isfinite(dJdz).all()


def test_cross_entropy_of_an_underflowed_probability_is_finite():
    """y_hat = 0 (a softmax that underflowed): J uses the log's floor -100 as BCE, and the
    gradient is the clamped loss's, 0 there, not -inf or 0/0 = NaN (autograd's NaN)."""
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y_hat = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    J, dJdy_hat = mlp.cross_entropy_loss(y, y_hat)
    assert J.item() == pytest.approx(50.0)
    assert dJdy_hat.tolist() == [[0.0, 0.0], [0.0, -0.5]]


# -- bad targets and predictions get a sentence --------------------------------------------------
GOOD = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
PROBABILITIES = torch.softmax(torch.randn(2, 3), 1)
LOG_PROBABILITIES = torch.log(PROBABILITIES)


@pytest.mark.parametrize("loss,y_hat", [(mlp.cross_entropy_loss, PROBABILITIES), (mlp.nll_loss, LOG_PROBABILITIES)])
@pytest.mark.parametrize("y,message", [
    (torch.tensor([[-0.5, 1.5, 0.0], [0.2, 0.3, 0.5]]), r"probabilities \(>= 0\).*first y\[0, 0\] = -0.5"),
    (torch.tensor([[float("nan"), 1.0, 0.0], [0.2, 0.3, 0.5]]), r"negative or NaN"),
    (torch.tensor([[0.0, 1.0, 1.0], [0.2, 0.3, 0.5]]), r"sum to 1.*row 0 sums to 2"),
    (torch.tensor([[0.5, 0.3, 0.1], [0.2, 0.3, 0.5]]), r"sum to 1.*row 0 sums to 0.9"),
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), r"shape \(2, 2\).*shape \(2, 3\)"),
    (torch.tensor([1, 2]), r"class indices.*one_hot"),
    (GOOD.double(), r"torch.float64"),
])
def test_bad_targets_are_refused(loss, y_hat, y, message):
    with pytest.raises(ValueError, match=message):
        loss(y, y_hat)


def test_targets_summing_to_one_within_rounding_pass():
    y = torch.softmax(torch.randn(4, 10), 1)  # rows off 1 by a few ulps
    mlp.nll_loss(y, torch.log_softmax(torch.randn(4, 10), 1))
    mlp.cross_entropy_loss(y, torch.softmax(torch.randn(4, 10), 1))


def test_predictions_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"cross_entropy_loss needs y_hat in \[0, 1\].*softmax"):
        mlp.cross_entropy_loss(GOOD, torch.tensor([[0.5, 1.5, 0.0], [0.2, 0.3, 0.5]]))
    with pytest.raises(ValueError, match=r"nll_loss needs y_hat <= 0.*log_softmax"):
        mlp.nll_loss(GOOD, torch.tensor([[2.0, -1.0, -3.0], [-1.0, -1.0, -1.0]]))  # logits, not log-probabilities
    with pytest.raises(ValueError, match=r"\(batch_size, classes\)"):
        mlp.nll_loss(torch.tensor([1.0]), torch.tensor([0.0]))


@pytest.mark.parametrize("name", NAMES)
def test_vector_layers_are_course_activations(name):
    """Usable as f_function and g_function, in mlp.py and in the standalone submission file."""
    net = mlp.MLP(3, 4, name, 4, 2, name)
    assert net.forward(torch.randn(5, 3)).shape == (5, 2)
    import generated.mlp_standalone as standalone
    assert name in standalone.ACTIVATIONS
    for loss in ("cross_entropy_loss", "nll_loss"):
        assert callable(getattr(standalone, loss))


# -- explain -----------------------------------------------------------------------------------
def test_explain_shows_the_jacobian_and_the_vjp():
    from derive import explain_vector
    text = explain_vector.explain("softmax", size=2)
    assert "s_1*(1 - s_1)" in text and "-s_1*s_2" in text  # the componentwise Jacobian
    assert "diag(s) - s s^T" in text
    assert "result*(grad - rowsum(grad*result))" in text  # the VJP as evaluated
    assert "proved equal to grad^T J at sizes 1..2: True" in text
    assert "shifted = input - input.amax(1, keepdim=True)" in text  # the printed forward
    assert "all finite: True" in text and "all finite: False" not in text
    text = explain_vector.explain("log_softmax", size=2, check=False)
    assert "grad - exp(result)*rowsum(grad)" in text and "I - 1 s^T" in text


def test_explain_against_autograd_is_close():
    from derive import explain_vector
    for name in NAMES:
        for dtype, (fa, fr, ba, br, finite) in explain_vector.against_autograd(name).items():
            bound = 1e-12 if dtype == "float64" else 1e-5
            assert finite and fr < bound and br < bound, (name, dtype, fr, br)


def test_explain_refuses_an_unknown_name():
    from derive import explain_vector
    with pytest.raises(KeyError, match="not a vector layer; expected one of: softmax, log_softmax"):
        explain_vector.explain("softmin")


def test_python_m_derive_explain_softmax(capsys):
    """The command line: `python -m derive explain softmax` prints the Jacobian and the VJP."""
    import io

    from derive import explain
    out = io.StringIO()
    assert explain.main(["softmax", "--no-check"], out=out) == 0
    text = out.getvalue()
    assert "diag(s) - s s^T" in text and "result*(grad - rowsum(grad*result))" in text
    out = io.StringIO()
    explain.main(["--list"], out=out)
    assert {"softmax", "log_softmax"} <= set(out.getvalue().split())
