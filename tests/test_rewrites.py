"""Every numerical rewrite of a raw SymPy derivative is proved equal to it, symbolically
where SymPy can and at many points on its stated domain otherwise."""
import random

import numpy as np
import pytest
import sympy as sp

from derive import activations, losses, rewrites
from derive.symbols import input as z, result, target


def _pieces_equal_off_kinks(rewritten, raw, points):
    for p in points:
        assert abs(complex(sp.N(rewritten.subs(z, p) - raw.subs(z, p), 30))) < 1e-25, p


@pytest.mark.parametrize("activation", activations.ACTIVATIONS, ids=lambda a: a.name)
def test_activation_rewrite_equals_raw_derivative(activation):
    raw, safe = activation.raw_derivative, activation.derivative
    as_input = safe.subs(result, activation.forward)  # a result-form derivative, back in z
    difference = sp.simplify((as_input - raw).rewrite(sp.exp))
    if difference != 0:
        # Piecewise and Heaviside do not simplify away: compare off the kinks, exactly.
        rng = random.Random(0)
        points = [sp.Rational(rng.randint(-4000, 4000), 100) for _ in range(40)] + [sp.Rational(1, 10**9), 21, -21]
        _pieces_equal_off_kinks(as_input, raw, [p for p in points if p not in (0, 20)])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_result_form_is_free_of_the_input(name):
    activation = activations.BY_NAME[name]
    assert z not in activation.derivative.free_symbols
    assert sp.simplify((activation.derivative.subs(result, activation.forward) - activation.raw_derivative)
                       .rewrite(sp.exp)) == 0


def test_kink_zero_is_pytorchs_convention_not_sympys():
    raw = sp.diff(sp.Max(0, z), z)
    assert raw.subs(z, 0) == sp.Rational(1, 2)  # SymPy's Heaviside(0): the trap
    assert rewrites.kink_zero(raw).subs(z, 0) == 0  # PyTorch: grad * (input > 0)
    assert rewrites.kink_zero(raw).subs(z, 3) == 1 and rewrites.kink_zero(raw).subs(z, -3) == 0


def test_stable_sigmoid_equals_raw_and_does_not_overflow():
    raw = sp.exp(z) / (sp.exp(z) + 1)
    stable = rewrites.stable_sigmoid(raw)
    assert sp.simplify(stable - raw) == 0
    assert stable != raw
    points = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        good = sp.lambdify(z, stable, "numpy")(points)
        bad = sp.lambdify(z, raw, "numpy")(points)
    assert np.isfinite(good).all() and good[-1] == 1.0 and good[0] == 0.0
    assert np.isnan(bad[-1])  # inf / inf: why the rewrite exists


def test_bce_log_clamp_equal_where_logs_are_above_the_floor():
    bce = losses.BY_NAME["bce_loss"]
    unclamped = bce.safe_term.replace(sp.Max, lambda *args: [a for a in args if not a.is_number][0])
    assert sp.simplify(unclamped - bce.term) == 0
    # target 0 at y_hat = 0: 0 * max(log 0, -100) is 0, where 0 * -inf would be NaN.
    assert bce.safe_term.subs(target, 0).subs(z, 0) == 0
    # Below exp(-100) the log is clamped: the loss stops at 100 instead of growing to inf.
    assert bce.safe_term.subs(target, 1).subs(z, sp.Rational(1, 10**50)) == 100


def test_bce_denominator_clamp_equal_where_denominator_is_above_eps():
    bce = losses.BY_NAME["bce_loss"]
    unclamped = bce.derivative.replace(sp.Max, lambda *args: [a for a in args if not a.is_number][0])
    assert sp.simplify(unclamped - bce.raw_derivative) == 0
    assert sp.simplify(unclamped - sp.diff(bce.term, z)) == 0
    # At y_hat = 0 and 1 the clamp gives PyTorch's finite value.
    assert bce.derivative.subs({z: 1, target: 0}) == 10**12
    assert bce.derivative.subs({z: 0, target: 1}) == -(10**12)


def test_in_terms_of_result_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="in terms of result"):
        rewrites.in_terms_of_result(sp.cos(z), sp.sin(z) + z**3)


@pytest.mark.parametrize("name", ["relu", "scaled_relu", "leaky_relu"])
def test_kink_conditions_move_to_the_result(name):
    """ReLU's backward reads result > 0 (as PyTorch's threshold_backward does), so the
    forward keeps one tensor, not two; the condition selects exactly the same inputs."""
    a = activations.BY_NAME[name]
    assert a.saves == ("result",)
    assert z not in a.derivative.free_symbols
    for p in (-3, -sp.Rational(1, 10**6), 0, sp.Rational(1, 10**6), 3):
        assert a.derivative.subs(result, a.forward.subs(z, p)) == a.safe_derivative.subs(z, p)


def test_conditions_on_result_refuse_a_different_truth_set():
    # result = input**2: result > 0 also holds for negative inputs, input > 0 does not.
    with pytest.raises(ValueError, match="select different inputs"):
        rewrites.in_terms_of_result(sp.Piecewise((1, z > 0), (0, True)), z**2)
