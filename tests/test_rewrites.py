"""Every numerical rewrite of a raw SymPy derivative is proved equal to it, symbolically
where SymPy can and at many points on its stated domain otherwise."""
import random

import numpy as np
import pytest
import sympy as sp

from derive import activations, losses, rewrites
from derive.functions import DivideLast, Sigmoid, elementary
from derive.symbols import input as z, result, target


def _pieces_equal_off_kinks(rewritten, raw, points):
    for p in points:
        assert abs(complex(sp.N(rewritten.subs(z, p) - raw.subs(z, p), 30))) < 1e-25, p


@pytest.mark.parametrize("activation", activations.ACTIVATIONS, ids=lambda a: a.name)
def test_activation_rewrite_equals_raw_derivative(activation):
    """The round trip: f' as the code evaluates it (every rewrite and printing spelling),
    written back in elementary functions and in the input, is SymPy's raw f'."""
    raw = activation.raw_derivative
    evaluated = elementary(rewrites.before_printing(activation.derivative))
    as_input = evaluated.subs(result, activation.forward)
    smooth = not raw.has(sp.Heaviside, sp.Piecewise, sp.Min, sp.Max)
    if not smooth or sp.simplify((as_input - raw).rewrite(sp.exp)) != 0:
        # Piecewise and Heaviside do not simplify away: compare off the kinks, exactly.
        rng = random.Random(0)
        points = [sp.Rational(rng.randint(-4000, 4000), 100) for _ in range(40)] + [sp.Rational(1, 10**9), 21, -21]
        _pieces_equal_off_kinks(as_input, raw, [p for p in points if p not in activation.kink_values])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_result_form_is_free_of_the_input(name):
    activation = activations.BY_NAME[name]
    assert z not in activation.derivative.free_symbols
    assert sp.simplify((activation.derivative.subs(result, activation.forward) - activation.raw_derivative)
                       .rewrite(sp.exp)) == 0


def test_kinks_take_the_rows_values_not_sympys():
    raw = sp.diff(sp.Max(0, z), z)
    assert raw.subs(z, 0) == sp.Rational(1, 2)  # SymPy's Heaviside(0): the trap
    placed = rewrites.on_intervals(raw, {sp.S.Zero: sp.S.Zero})
    assert placed.subs(z, 0) == 0 and placed.subs(z, 3) == 1 and placed.subs(z, -3) == 0
    assert rewrites.on_intervals(raw, {sp.S.Zero: sp.S.One}).subs(z, 0) == 1
    hardswish = activations.BY_NAME["hardswish"]
    # The middle piece's derivative at 3 is 3/2; PyTorch's, stated in the row, is 1.
    assert sp.diff(z * (z + 3) / 6, z).subs(z, 3) == sp.Rational(3, 2)
    assert hardswish.derivative.subs(z, 3) == 1 and hardswish.derivative.subs(z, -3) == 0


def test_kinks_refuse_a_jump_without_a_stated_value():
    with pytest.raises(rewrites.KinkError, match="jumps at input = 0.*kinks"):
        rewrites.on_intervals(sp.diff(sp.Max(0, z), z), {})
    with pytest.raises(rewrites.KinkError, match="neither|give"):
        rewrites.on_intervals(sp.diff(sp.Max(0, z), z), {sp.S.Zero: sp.Rational(1, 2)})


def test_kinks_send_nan_to_the_stated_piece():
    raw = sp.diff(sp.Piecewise((z, z > 0), (z / 100, True)), z)
    assert rewrites.on_intervals(raw, {sp.S.Zero: sp.Rational(1, 100)}, sp.Rational(1, 100)).args[-1].expr == \
        sp.Rational(1, 100)
    assert rewrites.on_intervals(raw, {sp.S.Zero: sp.Rational(1, 100)}, sp.S.One).args[-1].expr == 1


ROUND_TRIPS = [
    (rewrites.LOG1P, sp.log(1 + sp.exp(z))),
    (rewrites.LOG1P, sp.log(1 - z)),
    (rewrites.EXPM1, 3 * sp.exp(z) - 3),
    (rewrites.SIGMOID, 1 / (1 + sp.exp(-z))),
    (rewrites.SIGMOID, sp.exp(z) / (sp.exp(z) + 1)),
    (rewrites.SIGMOID, z * sp.exp(-z) / (1 + sp.exp(-z)) ** 2),
    (rewrites.LOG_SIGMOID, sp.log(Sigmoid(z))),
    (rewrites.ABS, -z * sp.sign(z) / (sp.Abs(z) + 1) ** 2 + 1 / (sp.Abs(z) + 1)),
    (rewrites.CDF_FIRST, sp.erf(z) / 2 + sp.Rational(1, 2) + z * sp.exp(-z ** 2 / 2)),
]


@pytest.mark.parametrize("rewrite,expr", ROUND_TRIPS, ids=[str(e) for _, e in ROUND_TRIPS])
def test_rewrite_round_trip(rewrite, expr):
    """Each rewrite changes its example, and the result written back in elementary
    functions equals it (exactly at 30 digits, at points across the line, signs of 0 too)."""
    rewritten = rewrite(expr)
    assert rewritten != expr
    back = elementary(rewritten)
    points = [sp.Rational(k, 7) for k in range(-60, 61, 7)] + [sp.Rational(1, 10**6), -sp.Rational(1, 10**6)]
    for p in points:
        if p == 1 and expr.has(sp.log(1 - z)):
            continue
        assert abs(complex(sp.N(back.subs(z, p) - expr.subs(z, p), 30))) < 1e-25, (p, back, expr)


def test_sigmoid_rewrite_does_not_overflow():
    raw = z * sp.exp(-z) / (1 + sp.exp(-z)) ** 2 + 1 / (1 + sp.exp(-z))  # SiLU'
    stable = rewrites.SIGMOID(raw)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    points = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        good = sp.lambdify(z, stable, [{"Sigmoid": sigmoid}, "numpy"])(points)
        bad = sp.lambdify(z, raw, "numpy")(points)
    assert np.isfinite(good).all() and good[-1] == 1.0 and good[0] == 0.0
    assert np.isnan(bad[0])  # -1e4 * inf / inf: why the rewrite exists


def test_every_note_is_a_whole_sentence_with_its_parameters():
    bce = losses.BY_NAME["bce_loss"]
    notes = [r.note(bce) for r in bce.forward_rewrites + bce.backward_rewrites + bce.reduction_rewrites]
    assert "-100" in notes[0] and "1e-12" in notes[1] and "numel" in notes[2]
    for row in activations.ACTIVATIONS:
        for r in row.chain + row.forward_rewrites + rewrites.BEFORE_PRINTING:
            note = r.note(row)
            assert note.endswith(".") and len(note) > 30, (row.name, note)
    assert "f'(3) = 1" in rewrites.KINKS.note(activations.BY_NAME["hardswish"])


def test_divide_count_last_round_trip():
    divided = losses.BY_NAME["mse_loss"].reduction_rewrites[0](2 * (z - target) / losses.numel)
    assert isinstance(divided, DivideLast)
    assert sp.simplify(elementary(divided) - 2 * (z - target) / losses.numel) == 0


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
