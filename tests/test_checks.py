"""derive/checks.py, the gate `make derive` passes before it writes: the catalogue passes it,
and each check refuses a formula that is wrong. (`python -m derive --check` on an unchanged
tree skips the gate, as it skips the trial run; this file runs it on every CI run.)"""
import dataclasses

import pytest
import sympy as sp

from derive import activations, checks, linear, losses, render
from derive.rewrites import truth_set
from derive.symbols import grad, input


def test_the_catalogue_passes_every_check():
    checks.run_all()


def _with(row, **cached):
    """A copy of a row whose cached derivations are replaced (a frozen dataclass)."""
    copy = dataclasses.replace(row, name=row.name + "_wrong")
    for key, value in cached.items():
        object.__setattr__(copy, key, value)
    return copy


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "hardswish"])
def test_a_rewrite_that_changes_the_value_is_refused(name):
    a = activations.BY_NAME[name]
    wrong = _with(a, derivative=a.derivative * (1 + sp.Rational(1, 10**9)))
    with pytest.raises(checks.DerivationError, match=name + "_wrong rewrite"):
        checks.check_activation(wrong)


def test_a_vjp_that_is_not_grad_times_the_derivative_is_refused():
    a = activations.BY_NAME["tanh"]
    wrong = _with(a, vjp=grad + a.derivative)
    with pytest.raises(checks.DerivationError, match="tanh_wrong VJP"):
        checks.check_activation(wrong)


class _DoubledGradient:
    """A loss whose gradient is twice what it should be."""

    def __init__(self, loss):
        self._loss = loss

    def __getattr__(self, key):
        return getattr(self._loss, key)

    def gradient(self, reduction):
        return 2 * self._loss.gradient(reduction)


@pytest.mark.parametrize("name", [loss.name for loss in losses.LOSSES])
def test_a_wrong_loss_gradient_is_refused(name):
    with pytest.raises(checks.DerivationError, match="gradient"):
        checks.check_loss(_DoubledGradient(losses.BY_NAME[name]))


@pytest.mark.parametrize("wrong, message", [
    (lambda right: linear.input.T * linear.grad, r"dJ/dweight is 3 x 2, but weight is 2 x 3"),  # transposed
    (lambda right: 2 * right["weight"], r"dJ/dweight: Matrix"),
])
def test_a_wrong_linear_gradient_is_refused(monkeypatch, wrong, message):
    right = linear.vjp()
    monkeypatch.setattr(linear, "vjp", lambda: dict(right, weight=wrong(right)))
    with pytest.raises(checks.DerivationError, match=message):
        checks.check_linear()


x = input
CONDITIONS = [x > 0, x >= 0, x < 0, x <= sp.Rational(1, 2), sp.Max(0, x) > 0, 5 * sp.Max(0, x) <= 0,
              sp.Max(x, x / 100) > 0, sp.Min(6, sp.Max(0, x)) > 0, sp.Min(6, sp.Max(0, x)) < 6,
              sp.Piecewise((x, x > 0), (x / 100, True)) >= 0, sp.Max(0, x) >= 0, x ** 2 > 1,
              sp.exp(x) > 1]


@pytest.mark.parametrize("condition", CONDITIONS, ids=str)
def test_truth_set_is_solvesets(condition):
    """The fast path (Piecewise folded out, polynomial inequalities) gives solveset's answer;
    exp(x) > 1 takes the fallback."""
    slow = sp.solveset(condition.replace(lambda e: isinstance(e, (sp.Max, sp.Min)),
                                         lambda e: e.rewrite(sp.Piecewise)), x, sp.S.Reals)
    assert truth_set(condition) == slow


def test_a_failed_check_writes_nothing(tmp_path, monkeypatch, capsys):
    def fails():
        raise checks.DerivationError("linear dJ/dweight: planted")

    monkeypatch.setattr(checks, "run_all", fails)
    monkeypatch.setattr(render, "GENERATED", tmp_path / "generated")
    assert render.main([]) == 1
    assert "a derivation check failed, so nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "generated").exists()
