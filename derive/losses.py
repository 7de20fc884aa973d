"""The losses, each defined once by its elementwise term and an explicit reduction.

A loss over N elements is ``scale * sum_i term(input_i, target_i)``, where input is y_hat:
- reduction "sum":  scale = 1     (the handout's MSE, ||y_hat - y||^2 for one sample),
- reduction "mean": scale = 1/N   (the handout's BCE averages the K outputs of one sample;
  PyTorch's reduction='mean' averages all batch * K elements, which the course compares to).
  What N counts is the row's ``count``: every element (numel) for MSE and BCE, the batch for
  the classification losses (cross-entropy and NLL sum over the classes of a sample and
  average over samples, as PyTorch's cross_entropy with probability targets).

The sum is linear, so dJ/dinput_i = scale * term'(input_i): SymPy differentiates the term.
The printed code divides by numel last, in PyTorch's rounding order (see
TorchPrinter._divide_by_counts for why that matters to BCE).
In numerator layout dJ/dy_hat is a row vector, and the batched code holds one such row per
sample, i.e. an array shaped like y_hat.
"""
from dataclasses import dataclass
from functools import cached_property
from typing import Tuple

import sympy as sp

from derive import rewrites
from derive.functions import ElementSum
from derive.symbols import input, target

numel = sp.Symbol("numel", integer=True, positive=True)  # N, the number of elements reduced
batch = sp.Symbol("batch", integer=True, positive=True)  # N, the number of samples (rows)

# PyTorch's BCELoss constants: each log is clamped at -100 (so y_hat in {0, 1} gives a
# finite loss) and the backward's denominator y_hat (1 - y_hat) at 1e-12.
BCE_LOG_FLOOR = -100
BCE_EPS = sp.Rational(1, 10**12)

REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Loss:
    name: str
    term: sp.Expr  # one element's loss, the one definition
    latex: str
    forward_rewrites: Tuple[rewrites.Rewrite, ...] = ()  # on the term
    backward_rewrites: Tuple[rewrites.Rewrite, ...] = ()  # on d term / d input
    count: sp.Symbol = numel  # what reduction "mean" divides by: numel or batch
    # On the reduced loss and its gradient: the count divides last, as PyTorch rounds.
    reduction_rewrites: Tuple[rewrites.Rewrite, ...] = (rewrites.DivideCountLast(numel),)
    # What SymPy differentiates: "term", the definition (BCE: PyTorch's backward is written
    # for the unclamped loss, then clamped itself), or "safe_term", the loss as computed,
    # after forward_rewrites (autograd of the clamped composition).
    differentiate: str = "term"

    @staticmethod
    def scale(reduction, count=numel):
        if reduction not in REDUCTIONS:
            raise ValueError("unknown reduction {!r}; expected one of {}".format(reduction, REDUCTIONS))
        return sp.S.One if reduction == "sum" else sp.S.One / count

    @cached_property
    def safe_term(self):
        return rewrites.apply(self.term, self.forward_rewrites, self)

    def expression(self, reduction, safe=True):
        """The scalar loss J over numel elements."""
        return self.scale(reduction, self.count) * ElementSum(self.safe_term if safe else self.term)

    @cached_property
    def raw_derivative(self):
        """d term / d input (or d safe_term, as ``differentiate`` says), as SymPy
        differentiates it (factored: 2 (input - target))."""
        return sp.factor(sp.diff(getattr(self, self.differentiate), input))

    @cached_property
    def derivative(self):
        """The raw derivative after backward_rewrites; a Piecewise factor is folded over the
        whole product, so a zero branch prints as a mask."""
        return sp.piecewise_fold(rewrites.apply(self.raw_derivative, self.backward_rewrites, self))

    def gradient(self, reduction):
        """dJ/dinput_i: the array the course's mse_loss / bce_loss return as dJdy_hat."""
        return self.scale(reduction, self.count) * self.derivative


LOSSES = (
    Loss("mse_loss", (input - target) ** 2, r"\ell_{\mathrm{MSE}}"),
    Loss("bce_loss", -(target * sp.log(input) + (1 - target) * sp.log(1 - input)),
         r"\ell_{\mathrm{BCE}}",
         forward_rewrites=(rewrites.ClampLog(BCE_LOG_FLOOR),),
         backward_rewrites=(rewrites.ClampDenominator(input, BCE_EPS),)),
    # Targets are probability rows (one-hot or soft), shaped like y_hat; the mean is over samples.
    # The log is clamped at -100 as BCE's; the gradient is that of the clamped loss (PyTorch has
    # no cross-entropy on probabilities to follow): -target/input, and 0 where the clamp holds
    # (y_hat < e^-100, e.g. a probability that underflowed to 0) instead of inf or 0/0.
    Loss("cross_entropy_loss", -target * sp.log(input), r"\ell_{\mathrm{CE}}",
         forward_rewrites=(rewrites.ClampLog(BCE_LOG_FLOOR),), backward_rewrites=(rewrites.CLAMP_STEP,),
         count=batch, reduction_rewrites=(rewrites.DivideCountLast(batch),), differentiate="safe_term"),
    # On log-probabilities (log_softmax's output): no log of its own, so nothing to clamp.
    Loss("nll_loss", -target * input, r"\ell_{\mathrm{NLL}}", count=batch,
         reduction_rewrites=(rewrites.DivideCountLast(batch),)),
)

BY_NAME = {loss.name: loss for loss in LOSSES}
