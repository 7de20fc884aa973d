"""The accuracy certifier and the two numerics profiles, against mpmath and torch autograd.

The default (torch) profile must never be less accurate than autograd beyond the margins of
accuracy/targets.py, and the accurate profile must meet its targets, on every catalogued
activation and both dtypes. Reference values are cached under .cache/accuracy/ (the first
run computes them: about a minute per layer on a loaded machine)."""
import functools

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

import mlp
from accuracy import measure, metric, reference, targets
from autograd_reference import TORCH_ACTIVATIONS, assert_close
from benchmarks import memory
from derive import accurate, activations
from derive.functions import elementary, mpmath_modules
from derive.symbols import input as x_symbol

NAMES = [a.name for a in activations.ACTIVATIONS]
DTYPES = list(measure.DTYPES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bits_count_the_floats_between(dtype):
    one = dtype(1)
    up = np.nextafter(one, dtype(2))
    computed = np.array([one, up, np.nextafter(up, dtype(2)), -0.0, np.nan], dtype=dtype)
    truth = np.array([one, one, one, 0.0, one], dtype=dtype)
    bits = metric.bits_of_error(computed, truth)
    width = np.dtype(dtype).itemsize * 8
    assert bits.tolist() == [0.0, 1.0, np.log2(3), 0.0, float(width)]
    # Across zero: the smallest subnormals on either side are 2 floats apart.
    tiny = np.nextafter(dtype(0), dtype(1))
    assert metric.bits_of_error(np.array([-tiny]), np.array([tiny])).tolist() == [np.log2(3)]


def test_reference_sees_cancellation_two_precisions_miss():
    """GELU'(-26.2) = Phi + x phi: 1 + erf(x / sqrt 2) is 0 at 60 and at 100 digits alike."""
    derivative = elementary(activations.BY_NAME["gelu"].safe_derivative)
    truth, normal = reference.true_values(derivative, x_symbol, np.float64, [-26.2])
    exact = derivative.evalf(60, subs={x_symbol: sp.Float(-26.2, 60)})
    assert normal[0] and truth[0] == float(exact) and truth[0] != float(-26.2 * mpmath.npdf(-26.2))


def test_reference_sees_a_log_of_almost_one():
    """Mish'(-247.8) = e^x (1 + x) roughly: log(1 + e^x) is 0 at 60 and at 100 digits alike."""
    derivative = elementary(activations.BY_NAME["mish"].safe_derivative)
    truth, _ = reference.true_values(derivative, x_symbol, np.float64, [-247.844])
    with mpmath.workdps(400):  # plainly, at a precision that needs no checks (SymPy's evalf misses it too)
        exact = sp.lambdify(x_symbol, derivative, "mpmath")(mpmath.mpf(-247.844))
    assert truth[0] == float(exact) and abs(truth[0] / float(-247.844 * mpmath.exp(-247.844)) - 1) > 1e-3


def test_reference_rounds_correctly_to_float32():
    truth, _ = reference.true_values(sp.exp(x_symbol), x_symbol, np.float32, [1.0])
    assert truth[0] == np.float32(float(mpmath.e))


@functools.lru_cache(maxsize=None)
def _summary(name, dtype_name):
    return measure.layer_summary(name, dtype_name)


def _expect(misses, key):
    """No misses, or exactly the known ones (strict: a known miss that now passes fails)."""
    if key in targets.KNOWN_MISSES:
        assert misses, "{} now meets its target: remove it from targets.KNOWN_MISSES".format(key)
        pytest.xfail(targets.KNOWN_MISSES[key])
    assert misses == [], (key, misses)


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_torch_profile_no_worse_than_autograd(name, dtype_name):
    stats = _summary(name, dtype_name)
    _expect(targets.torch_misses(stats["torch"], stats["autograd"]), (name, dtype_name, "torch"))


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_accurate_profile_meets_its_targets(name, dtype_name):
    _expect(targets.accurate_misses(_summary(name, dtype_name)["accurate"]), (name, dtype_name, "accurate"))


@pytest.mark.parametrize("activation", activations.ACTIVATIONS, ids=lambda a: a.name)
def test_accurate_form_is_a_proved_current_candidate(activation):
    """The recorded choice is one of today's candidates (else `make accuracy` is due) and
    equals the derivative."""
    chosen = accurate.chosen(activation)
    assert chosen.key in {c.key for c in accurate.candidates(activation)}, "run `make accuracy`"
    assert accurate.prove(chosen, activation)


def test_prove_refuses_a_wrong_form():
    sigmoid = activations.BY_NAME["sigmoid"]
    wrong = accurate.Candidate("sympy", ("made up",), False, 1 / (1 + sp.exp(-x_symbol)) ** 2)
    with pytest.raises(AssertionError, match="differs"):
        accurate.prove(wrong, sigmoid)


def test_every_rewrite_keeps_the_value():
    """Each candidate rewrite on its own, on an expression it applies to, at 60 digits."""
    z = x_symbol
    cases = {"sech_squared": 1 - sp.tanh(z) ** 2, "tanh_as_sigmoid": (1 + sp.tanh(z)) / 2,
             "erfc_reflected": (1 + sp.erf(z)) / 2, "erfc_direct": 1 - sp.erf(z),
             "split_square": z * sp.exp(-z ** 2 / 2)}
    assert set(cases) == set(accurate.BY_NAME)
    for name, expr in cases.items():
        new = accurate.BY_NAME[name](expr)
        assert new != expr, name
        before, after = (sp.lambdify(z, e, modules=mpmath_modules()) for e in (expr, elementary(new)))
        with mpmath.workdps(60):
            for point in (-7.25, -0.5, 0.125, 3.0):
                assert abs(before(point) - after(point)) < mpmath.mpf(10) ** -50, (name, point)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_accurate_profile_matches_autograd_where_both_are_accurate(name, dtype):
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64).to(dtype) * 3
    net = mlp.MLP(5, 5, name, 5, 5, "identity", numerics="accurate")
    eye = torch.eye(5, dtype=dtype)
    net.parameters = dict(W1=eye, b1=torch.zeros(5, dtype=dtype), W2=eye.clone(), b2=torch.zeros(5, dtype=dtype))
    net.forward(z)
    grad = torch.linspace(-2, 3, 30, dtype=dtype).reshape(6, 5)
    net.backward(grad)
    z_ = z.clone().requires_grad_()
    with torch.enable_grad():
        TORCH_ACTIVATIONS[name](z_).backward(grad)
    assert_close(net.grads["dJdb1"], z_.grad.sum(0), name + " accurate dJdb1")
    assert_close(net.grads["dJdW2"], grad.t().mm(TORCH_ACTIVATIONS[name](z)), name + " accurate dJdW2")


@pytest.mark.parametrize("name", NAMES)
def test_accurate_profile_keeps_no_more_than_autograd(name):
    x = torch.randn(16, 8)
    net = mlp.MLP(8, 32, name, 32, 4, "sigmoid", numerics="accurate")
    seq = torch.nn.Sequential(torch.nn.Linear(8, 32), measure_module(name), torch.nn.Linear(32, 4), torch.nn.Sigmoid())
    for mine, theirs in zip((seq[0], seq[2]), (("W1", "b1"), ("W2", "b2"))):
        mine.weight.data, mine.bias.data = net.parameters[theirs[0]], net.parameters[theirs[1]]
    assert memory.generated_kept_bytes(net, x) <= memory.autograd_kept_bytes(seq, x)


def measure_module(name):
    class Activation(torch.nn.Module):
        def forward(self, z):
            return TORCH_ACTIVATIONS[name](z)
    return Activation()


@pytest.mark.parametrize("numerics", ["fast", None, ["accurate"]])
def test_numerics_must_be_a_known_profile(numerics):
    with pytest.raises(ValueError, match="numerics must be one of 'torch', 'accurate'"):
        mlp.MLP(2, 3, "relu", 3, 1, "identity", numerics=numerics)


@pytest.mark.parametrize("name", ["sigmoid", "relu"])
def test_explain_shows_both_profiles_and_their_bits(name):
    from derive.profiles import describe
    text = describe(name)
    assert 'numerics="torch"' in text and 'numerics="accurate" ({}'.format(accurate.chosen(activations.BY_NAME[name]).key) in text
    for dtype in DTYPES:
        for source in ("torch", "accurate", "autograd"):
            assert "{:9s} {} max".format(source, dtype) in text


def test_explain_refuses_an_unknown_name():
    from derive.profiles import describe
    with pytest.raises(SystemExit, match="unknown activation 'swish'"):
        describe("swish")
