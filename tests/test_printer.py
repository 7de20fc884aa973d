"""The TorchPrinter subclass prints valid torch for what SymPy's own printer gets wrong."""
import pytest
import sympy as sp

from derive.losses import numel
from derive.symbols import grad, input as z, target
from derive.torch_printer import torch_code
from generated import layers

CASES = [
    (sp.sqrt(2) * z, "1.4142135623730951*input"),  # SymPy's printer: torch.sqrt(2)*input
    (sp.Max(0, z), "torch.relu(input)"),  # SymPy's printer: torch.max(0, input)
    (sp.Max(z, -100), "torch.clamp(input, min=-100)"),
    (sp.Piecewise((grad, z > 0), (0, True)), "grad.masked_fill(input <= 0, 0)"),
    (sp.Piecewise((5 * grad, z > 0), (0, True)), "(5*grad).masked_fill(input <= 0, 0)"),
    (1 / (1 + sp.exp(-z)), "torch.sigmoid(input)"),
    (grad / (1 + sp.exp(-z)), "grad*torch.sigmoid(input)"),
    (sp.log(1 - z), "torch.log1p(-input)"),
    (sp.Rational(1, 100) * z, "0.01*input"),
    (-z * (1 - z), "-input*(1 - input)"),
    # A reduction's count divides last (PyTorch's rounding order); 2**k moves under it.
    (sp.factor(2 * z - 2 * grad) / numel, "-(grad - input)/(numel/2)"),
    ((z - target) / sp.Max(z, sp.Rational(1, 10**12)) / numel, "(input - target)/torch.clamp(input, min=1e-12)/numel"),
    (3 * z / numel, "3*input/numel"),
]


@pytest.mark.parametrize("expr,expected", CASES, ids=[c[1] for c in CASES])
def test_prints(expr, expected):
    assert torch_code(expr) == expected


def test_refuses_a_bare_number_branch():
    # torch 1.7.1's torch.where takes tensors only; the generator folds grad in first.
    with pytest.raises(NotImplementedError, match="fold `grad`"):
        torch_code(sp.Piecewise((1, z > 0), (sp.Rational(1, 100), True)))


def test_generated_code_has_none_of_the_invalid_spellings():
    source = open(layers.__file__).read()
    for bad in ("torch.max(0", "torch.sqrt(2", "heaviside", "torch.pow(", "Heaviside(input, 1/2"):
        code_lines = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
        assert not any(bad in line for line in code_lines), bad
