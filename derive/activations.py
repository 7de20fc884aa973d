"""The elementwise activations: the catalogue, one row each.

For an elementwise layer result_i = f(input_i), the Jacobian in numerator layout (a row per
output) is diag(f'(input)), and the vector-Jacobian product of an upstream row vector
``grad`` is grad * f'(input), elementwise. The generated code computes the product only;
it never builds the diagonal matrix.

A row is data, derivatives.yaml style: the forward expression in ``x`` (SymPy syntax), its
parameters with PyTorch's defaults, its LaTeX name, and where PyTorch's derivative at a kink
is a convention, that value (``kinks``), with the value its backward gives at a NaN input
(``at_nan``). SymPy derives f'; the rewrite stage (``derive.rewrites``) makes it safe to
evaluate: ``KINKS`` for every row, then the row's own ``rewrites``. Nothing here or anywhere
in derive/ branches on a row's name. ``python -m derive explain NAME`` shows every step.
"""
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Optional, Tuple

import sympy as sp

from derive import rewrites
from derive.rewrites import ABS, CDF_FIRST, IN_TERMS_OF_RESULT, LOG_SIGMOID, SIGMOID, Rewrite
from derive.symbols import grad, input, result

X = sp.Symbol("x", real=True)  # what a row's text is written in; ``input`` in the code


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse(text, parameters=()):
    """A row's text (SymPy syntax in x and its parameter names) as an expression in
    ``input``; decimals become exact rationals. Raises ValueError naming what is wrong."""
    if _NUMBER.fullmatch(text.strip()):  # a parameter's value or a kink: no parser needed
        return sp.Rational(text.strip())
    names = {"x": input, "sigmoid": sp.Lambda(X, 1 / (1 + sp.exp(-X)))}
    names.update({p: sp.Symbol(p, real=True) for p in parameters})
    try:
        expr = sp.sympify(text, locals=names, rational=True)
    except (sp.SympifyError, SyntaxError, TypeError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise ValueError("cannot parse {!r} as a SymPy expression ({})".format(text, reason)) from None
    if not isinstance(expr, sp.Expr):
        raise ValueError("{!r} is not an expression in x".format(text))
    return expr


@dataclass(frozen=True)
class Activation:
    name: str
    definition: str  # f, in x and the parameters' names: the one definition
    latex: str  # how the theory writes f
    # (hash=False: a row is hashed by its other fields; the theory caches by row)
    parameters: Mapping[str, str] = field(default_factory=dict, hash=False)  # PyTorch's defaults
    kinks: Mapping[str, str] = field(default_factory=dict, hash=False)  # x -> f'(x) where f' jumps, as PyTorch
    at_nan: Optional[str] = None  # f'(nan) as PyTorch's backward ("nan": propagates); None: last piece's
    rewrites: Tuple[Rewrite, ...] = ()  # after KINKS, on f'
    forward_rewrites: Tuple[Rewrite, ...] = ()  # on f itself
    unbounded: bool = False  # |f(x)| grows without bound: targets of that size are fair
    reference: Optional[str] = None  # PyTorch's own spelling, for the checks against autograd
    # Other rewrite chains giving the same f', for a numerics profile to choose among.
    alternatives: Tuple[Tuple[Rewrite, ...], ...] = ()

    def _value(self, text):
        return parse(str(text), self.parameters).subs(self.defaults)

    @cached_property
    def defaults(self):
        return {sp.Symbol(p, real=True): parse(str(v)) for p, v in self.parameters.items()}

    @cached_property
    def expression(self):
        """f(input) with its parameters as symbols."""
        return parse(self.definition, self.parameters)

    @cached_property
    def forward(self):
        """f(input), the parameters at their defaults."""
        return self.expression.subs(self.defaults)

    @cached_property
    def kink_values(self):
        return {self._value(p): self._value(v) for p, v in self.kinks.items()}

    @cached_property
    def nan_value(self):
        return None if self.at_nan is None else (sp.nan if self.at_nan == "nan" else self._value(self.at_nan))

    @cached_property
    def raw_derivative(self):
        """f'(input) exactly as SymPy differentiates it."""
        return sp.diff(self.forward, input)

    @property
    def chain(self):
        """The rewrites f' goes through, in order."""
        return (rewrites.KINKS,) + tuple(self.rewrites)

    def derivative_with(self, chain):
        """f' through another chain of rewrites (an alternative form, for comparison)."""
        return rewrites.apply(self.raw_derivative, chain, self)

    @cached_property
    def stages(self):
        """[(rewrite, f' after it)] for each rewrite of ``chain``, in order."""
        return rewrites.stages(self.raw_derivative, self.chain, self)

    @cached_property
    def derivative(self):
        """f' as the generated backward evaluates it (before the printing spellings)."""
        return self.stages[-1][1]

    @cached_property
    def safe_derivative(self):
        """f' after the rewrites that keep it a function of the input (what the theory plots)."""
        expr = self.raw_derivative
        for r, after in self.stages:
            if not r.in_input:
                break
            expr = after
        return expr

    @cached_property
    def safe_forward(self):
        return rewrites.apply(self.forward, self.forward_rewrites, self)

    @cached_property
    def vjp(self):
        """grad * f'(.), elementwise: the backward pass. ``grad`` is folded into each
        Piecewise branch, so a zero branch prints as a mask."""
        return sp.piecewise_fold(grad * self.derivative)

    def jacobian(self, n):
        """The n x n Jacobian in numerator layout at component symbols z_1..z_n, with the
        raw derivative: d result_i / d z_j, a row per output."""
        z = sp.Matrix(sp.symbols("z_1:{}".format(n + 1), real=True))
        outputs = z.applyfunc(lambda zi: self.forward.xreplace({input: zi}))
        return outputs.jacobian(z), z

    @property
    def saves(self):
        """What the backward needs from the forward pass, in a fixed order."""
        return tuple(s.name for s in (input, result) if s in self.vjp.free_symbols)


ACTIVATIONS = (
    Activation("identity", "x", r"\operatorname{id}", unbounded=True, reference="input"),
    Activation("relu", "Max(0, x)", r"\operatorname{ReLU}", kinks={"0": "0"}, at_nan="1",
               rewrites=(IN_TERMS_OF_RESULT,), unbounded=True, reference="F.relu(input)"),
    # The theory's f = 5 (.)^+ of 1.2 (mlp.py accepts it too, beside the course's names).
    Activation("scaled_relu", "5*Max(0, x)", r"5\,(\cdot)^+", kinks={"0": "0"}, at_nan="5",
               rewrites=(IN_TERMS_OF_RESULT,), unbounded=True, reference="5 * F.relu(input)"),
    Activation("sigmoid", "1/(1 + exp(-x))", r"\sigma", rewrites=(IN_TERMS_OF_RESULT,),
               reference="torch.sigmoid(input)"),
    Activation("tanh", "tanh(x)", r"\tanh", rewrites=(IN_TERMS_OF_RESULT,), reference="torch.tanh(input)"),
    Activation("leaky_relu", "Piecewise((x, x > 0), (negative_slope*x, True))", r"\operatorname{LeakyReLU}",
               parameters={"negative_slope": "0.01"}, kinks={"0": "negative_slope"}, at_nan="negative_slope",
               rewrites=(IN_TERMS_OF_RESULT,), unbounded=True, reference="F.leaky_relu(input)"),
    Activation("softplus", "Piecewise((x, beta*x > threshold), (log(1 + exp(beta*x))/beta, True))",
               r"\operatorname{Softplus}", parameters={"beta": "1", "threshold": "20"},
               kinks={"threshold/beta": "1/(1 + exp(-threshold))"}, at_nan="nan", unbounded=True,
               reference="F.softplus(input)"),
    # Exact GELU, x * Phi(x). Its derivative Phi(x) + x phi(x) has phi = exp(-x^2/2)/sqrt(2 pi).
    Activation("gelu", "x*(1 + erf(x/sqrt(2)))/2", r"\operatorname{GELU}", unbounded=True,
               rewrites=(CDF_FIRST,), reference="F.gelu(input)"),
    Activation("relu6", "Min(Max(0, x), 6)", r"\operatorname{ReLU6}", kinks={"0": "0", "6": "0"}, at_nan="1",
               reference="F.relu6(input)"),
    Activation("elu", "Piecewise((x, x > 0), (alpha*(exp(x) - 1), True))", r"\operatorname{ELU}",
               parameters={"alpha": "1"}, kinks={"0": "alpha"}, at_nan="1", unbounded=True,
               reference="F.elu(input)"),
    Activation("selu", "scale*Piecewise((x, x > 0), (alpha*(exp(x) - 1), True))", r"\operatorname{SELU}",
               parameters={"alpha": "1.6732632423543772848170429916717",
                           "scale": "1.0507009873554804934193349852946"},
               kinks={"0": "scale*alpha"}, at_nan="scale", unbounded=True, reference="F.selu(input)"),
    Activation("celu", "Piecewise((x, x > 0), (alpha*(exp(x/alpha) - 1), True))", r"\operatorname{CELU}",
               parameters={"alpha": "1"}, kinks={"0": "1"}, at_nan="1", unbounded=True,
               reference="F.celu(input)"),
    Activation("gelu_tanh", "x*(1 + tanh(sqrt(2/pi)*(x + kappa*x**3)))/2", r"\operatorname{GELU}_{\tanh}",
               parameters={"kappa": "0.044715"}, unbounded=True,
               reference="F.gelu(input, approximate='tanh')"),
    Activation("silu", "x/(1 + exp(-x))", r"\operatorname{SiLU}", unbounded=True, reference="F.silu(input)"),
    Activation("mish", "x*tanh(log(1 + exp(x)))", r"\operatorname{Mish}", unbounded=True,
               reference="F.mish(input)"),
    Activation("softsign", "x/(1 + Abs(x))", r"\operatorname{Softsign}", rewrites=(ABS,),
               reference="F.softsign(input)"),
    Activation("logsigmoid", "log(1/(1 + exp(-x)))", r"\log\sigma", forward_rewrites=(SIGMOID, LOG_SIGMOID),
               unbounded=True, reference="F.logsigmoid(input)"),
    Activation("hardtanh", "Min(Max(min_val, x), max_val)", r"\operatorname{Hardtanh}",
               parameters={"min_val": "-1", "max_val": "1"}, kinks={"min_val": "0", "max_val": "0"},
               at_nan="1", reference="F.hardtanh(input)"),
    Activation("hardsigmoid", "Min(Max(0, x + 3), 6)/6", r"\operatorname{Hardsigmoid}",
               kinks={"-3": "0", "3": "0"}, at_nan="0", reference="F.hardsigmoid(input)"),
    # Not the 3/2 the middle piece's derivative gives at 3: PyTorch takes the right piece there.
    Activation("hardswish", "x*Min(Max(0, x + 3), 6)/6", r"\operatorname{Hardswish}",
               kinks={"-3": "0", "3": "1"}, at_nan="1", unbounded=True, reference="F.hardswish(input)"),
    Activation("tanhshrink", "x - tanh(x)", r"\operatorname{Tanhshrink}", unbounded=True,
               reference="F.tanhshrink(input)"),
    Activation("softshrink", "x - Min(Max(-lambd, x), lambd)", r"\operatorname{Softshrink}",
               parameters={"lambd": "0.5"}, kinks={"-lambd": "0", "lambd": "0"}, at_nan="1", unbounded=True,
               reference="F.softshrink(input)"),
    Activation("hardshrink", "Piecewise((0, (x >= -lambd) & (x <= lambd)), (x, True))",
               r"\operatorname{Hardshrink}", parameters={"lambd": "0.5"}, kinks={"-lambd": "0", "lambd": "0"},
               at_nan="1", unbounded=True, reference="F.hardshrink(input)"),
)

BY_NAME = {a.name: a for a in ACTIVATIONS}
