"""The TorchPrinter subclass prints valid torch for what SymPy's own printer gets wrong."""
import pytest
import sympy as sp

from derive.losses import numel
from derive.symbols import grad, input as z, target
from derive.code import printed
from derive.rewrites import DivideCountLast
from derive.torch_printer import torch_code
from generated import layers

_last = DivideCountLast(numel)

# (expression, its torch source). Each goes through the rewrite stage's printing spellings
# first (code.printed), as everything in generated/ does; the printer itself recognizes nothing.
CASES = [
    (sp.sqrt(2) * z, "1.4142135623730951*input"),  # SymPy's printer: torch.sqrt(2)*input
    (sp.Max(0, z), "torch.relu(input)"),  # SymPy's printer: torch.max(0, input)
    (sp.Max(z, -100), "torch.clamp(input, min=-100)"),
    (sp.Min(sp.Max(z, -1), 1), "torch.clamp(input, min=-1, max=1)"),
    (sp.Min(z, 0), "torch.clamp(input, max=0)"),
    (sp.Piecewise((0, z <= 0), (grad, True)), "grad.masked_fill(input <= 0, 0)"),
    (sp.Piecewise((0, z <= 0), (5 * grad, True)), "(5*grad).masked_fill(input <= 0, 0)"),
    # NaN fails every comparison and takes the last piece, here 0: the mask is ~(cond).
    (sp.Piecewise((grad / 6, (z > -3) & (z < 3)), (0, True)),
     "(0.16666666666666666*grad).masked_fill(~((input < 3) & (input > -3)), 0)"),
    (sp.Piecewise((grad, z > 0), (grad / 100, True)), "torch.where(input > 0, grad, 0.01*grad)"),
    (sp.Piecewise((0, z <= -3), (z * grad, z < 3), (grad, True)),
     "(torch.where(input < 3, grad*input, grad)).masked_fill(input <= -3, 0)"),
    (1 / (1 + sp.exp(-z)), "torch.sigmoid(input)"),
    (grad / (1 + sp.exp(-z)), "grad*torch.sigmoid(input)"),
    (sp.log(1 - z), "torch.log1p(-input)"),
    (sp.exp(z) - 1, "torch.expm1(input)"),
    (sp.Rational(1, 100) * z, "0.01*input"),
    (-z * (1 - z), "-input*(1 - input)"),
    # A reduction's count divides last (PyTorch's rounding order); 2**k moves under it.
    (_last(sp.factor(2 * z - 2 * grad) / numel), "(-grad + input)/(numel/2)"),
    (_last((z - target) / sp.Max(z, sp.Rational(1, 10**12)) / numel),
     "(input - target)/torch.clamp(input, min=1e-12)/numel"),
    (_last(3 * z / numel), "3*input/numel"),
]


@pytest.mark.parametrize("expr,expected", CASES, ids=[c[1] for c in CASES])
def test_prints(expr, expected):
    assert printed(expr) == expected


def test_the_printer_itself_recognizes_nothing():
    """Without the rewrite stage the printer prints what it is given, term for term."""
    assert torch_code(1 / (1 + sp.exp(-z))) == "1/(1 + torch.exp(-input))"
    assert torch_code(sp.log(1 + z)) == "torch.log(input + 1)"


def test_refuses_what_it_has_no_spelling_for():
    with pytest.raises(NotImplementedError, match="no torch spelling"):
        torch_code(sp.besselj(0, z))


def test_generated_docstrings_read_as_torch():
    assert layers.linear_forward.__doc__ == "result = input @ weight.T + bias"


def test_refuses_a_bare_number_branch():
    # torch 1.7.1's torch.where takes tensors only; the generator folds grad in first.
    with pytest.raises(NotImplementedError, match="fold `grad`"):
        torch_code(sp.Piecewise((1, z > 0), (sp.Rational(1, 100), True)))


def test_generated_code_has_none_of_the_invalid_spellings():
    source = open(layers.__file__).read()
    for bad in ("torch.max(0", "torch.sqrt(2", "heaviside", "torch.pow(", "Heaviside(input, 1/2"):
        code_lines = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
        assert not any(bad in line for line in code_lines), bad
