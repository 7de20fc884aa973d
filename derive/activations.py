"""The elementwise activations, each defined once by its forward expression.

For an elementwise layer result_i = f(input_i), the Jacobian in numerator layout (a row per
output) is diag(f'(input)), and the vector-Jacobian product of an upstream row vector
``grad`` is grad * f'(input), elementwise. The generated code computes the product only;
it never builds the diagonal matrix.

Each entry names the rewrites its raw derivative needs (``derive.rewrites``). ``backward_in``
says whether the derivative is written in the input (SymPy's raw form) or in ``result``, the
forward's output, which the backward then reuses.
"""
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Tuple

import sympy as sp

from derive import rewrites
from derive.symbols import grad, input, result

LEAKY_RELU_SLOPE = sp.Rational(1, 100)  # torch.nn.LeakyReLU's default negative_slope
SOFTPLUS_THRESHOLD = 20  # torch.nn.Softplus(beta=1, threshold=20): linear above it


@dataclass(frozen=True)
class Activation:
    name: str
    forward: sp.Expr  # f(input), the one definition
    latex: str  # how the theory writes f
    rewrites: Tuple[Callable[[sp.Expr], sp.Expr], ...] = ()
    backward_in: str = "input"  # or "result"

    @cached_property
    def raw_derivative(self):
        """f'(input) exactly as SymPy differentiates it."""
        return sp.diff(self.forward, input)

    @cached_property
    def safe_derivative(self):
        """f' after the rewrites that make it safe in floating point, still in the input."""
        return rewrites.apply(self.raw_derivative, self.rewrites)

    @cached_property
    def derivative(self):
        """f' as the generated backward evaluates it: ``safe_derivative``, in terms of
        ``result`` where ``backward_in`` says so."""
        if self.backward_in == "result":
            return rewrites.in_terms_of_result(self.safe_derivative, self.forward)
        return self.safe_derivative

    @cached_property
    def vjp(self):
        """grad * f'(.), elementwise: the backward pass. ``grad`` is folded into each
        Piecewise branch, so a zero branch prints as a mask."""
        return sp.piecewise_fold(grad * self.derivative)

    def jacobian(self, n):
        """The n x n Jacobian in numerator layout at component symbols z_1..z_n, with the
        raw derivative: d result_i / d z_j, a row per output."""
        z = sp.Matrix(sp.symbols("z_1:{}".format(n + 1), real=True))
        outputs = z.applyfunc(lambda zi: self.forward.subs(input, zi))
        return outputs.jacobian(z), z

    @property
    def saves(self):
        """What the backward needs from the forward pass, in a fixed order."""
        return tuple(s.name for s in (input, result) if s in self.vjp.free_symbols)


ACTIVATIONS = (
    Activation("identity", input, r"\operatorname{id}"),
    Activation("relu", sp.Max(0, input), r"\operatorname{ReLU}", rewrites=(rewrites.kink_zero,),
               backward_in="result"),
    # The theory's f = 5 (.)^+ of 1.2 (mlp.py accepts it too, beside the course's names).
    Activation("scaled_relu", 5 * sp.Max(0, input), r"5\,(\cdot)^+", rewrites=(rewrites.kink_zero,),
               backward_in="result"),
    Activation("sigmoid", 1 / (1 + sp.exp(-input)), r"\sigma", backward_in="result"),
    Activation("tanh", sp.tanh(input), r"\tanh", backward_in="result"),
    # At 0 the `True` branch applies: slope 0.01, as PyTorch's leaky_relu_backward.
    Activation("leaky_relu", sp.Piecewise((input, input > 0), (LEAKY_RELU_SLOPE * input, True)),
               r"\operatorname{LeakyReLU}", backward_in="result"),
    Activation("softplus",
               sp.Piecewise((input, input > SOFTPLUS_THRESHOLD), (sp.log(1 + sp.exp(input)), True)),
               r"\operatorname{Softplus}", rewrites=(rewrites.stable_sigmoid,)),
    # Exact GELU, x * Phi(x). Its derivative Phi(x) + x phi(x) has phi = exp(-x^2/2)/sqrt(2 pi).
    Activation("gelu", input * (1 + sp.erf(input / sp.sqrt(2))) / 2, r"\operatorname{GELU}",
               rewrites=(rewrites.cdf_first,)),
)

BY_NAME = {a.name: a for a in ACTIVATIONS}
