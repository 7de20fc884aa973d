"""The torch side: what templates/layers_body.py.j2 needs, as printed strings."""
import sympy as sp
from sympy.printing.str import StrPrinter

from derive import accurate, activations, linear, losses, rewrites, vector_layers
from derive.functions import HighHalf
from derive.rewrites import before_printing
from derive.symbols import grad
from derive.torch_printer import torch_code, torch_statements


class PlainPrinter(StrPrinter):
    """One-line plain text for the comments and docstrings beside the code, in torch's
    words for the matrix algebra: ``input @ weight.T + bias``."""

    def _print_MatMul(self, expr):
        factors = list(expr.args)
        if isinstance(factors[0], sp.OneMatrix):  # 1_B b^T: b broadcast over the batch rows
            factors = factors[1:]
            if len(factors) == 1 and isinstance(factors[0], sp.Transpose):
                return self._print(factors[0].arg)
        return " @ ".join(self.parenthesize(f, sp.printing.precedence.PRECEDENCE["Mul"], strict=True) for f in factors)

    def _print_Transpose(self, expr):
        return "{}.T".format(self.parenthesize(expr.arg, sp.printing.precedence.PRECEDENCE["Atom"], strict=True))

    def _print_OneMatrix(self, expr):
        return "ones({}, {})".format(*expr.shape)


def plain(expr):
    # A constant given to 30 digits (SELU's) reads better as a float.
    long = {r: sp.Float(r, 17) for r in expr.atoms(sp.Rational) if r.q > 10**6}
    return PlainPrinter().doprint(expr.xreplace(long) if long else expr)


def printed(expr):
    """torch source for expr, after the rewrite stage's spellings (rewrites.BEFORE_PRINTING)."""
    return torch_code(before_printing(expr))


def notes(expr, stages, layer):
    """Each rewrite of ``stages`` ([(rewrite, expression after it)], from ``expr``) that
    changed something, then the printing spellings that do, as notes."""
    done, before = [], expr
    for r, after in stages:
        if after != before:
            done.append(r)
        before = after
    done += [r for r, _ in rewrites.steps(before, rewrites.BEFORE_PRINTING, layer)]  # (cheap: no kinks here)
    return [r.note(layer) for r in done]


def linear_context():
    backward = []
    for name, expr in linear.vjp().items():
        # The function takes what its formula reads: grad, then the layer's other tensors.
        reads = sorted(s.name for s in expr.atoms(sp.MatrixSymbol) if s != linear.grad)
        backward.append({"name": name, "args": ", ".join(["grad"] + reads), "math": plain(expr),
                         "code": torch_code(expr)})
    return {
        "doc": "result = input @ weight.T + bias (rows); z = W x + b (columns, the theory)",
        "forward_math": plain(linear.forward),
        "forward": torch_code(linear.forward),
        "backward": backward,
    }


def accurate_backward(candidate):
    """The body of ``<name>_backward_accurate`` for one accurate-profile candidate: lines
    that recast the saved tensors to float64 when the form is evaluated there and name a
    repeated high half, then the returned expression. Raises NotImplementedError for a form
    the printer cannot print."""
    lines = ["{0} = {0}.double()".format(s) for s in candidate.saves] if candidate.float64 else []
    derivative = before_printing(candidate.derivative)
    for i, value in enumerate(sorted(derivative.atoms(HighHalf), key=str)):
        name = sp.Symbol("high" if i == 0 else "high{}".format(i))
        lines.append("{} = {}".format(name, torch_code(value)))
        derivative = derivative.xreplace({value: name})
    if not candidate.float64:
        return lines, torch_code(sp.piecewise_fold(grad * derivative))
    return lines, "grad*({}).to(grad.dtype)".format(torch_code(derivative))


def accurate_context(a, choices):
    candidate = accurate.chosen(a, choices)
    casts, code = accurate_backward(candidate)
    return {
        # The torch profile's form won: the accurate profile reuses its backward.
        "same": not casts and code == printed(a.vjp),
        "key": candidate.key,
        "math": plain(before_printing(candidate.derivative)),
        "notes": [accurate.BY_NAME[n].note() for n in candidate.rewrites]
        + [r.note(a) for r, _ in rewrites.steps(candidate.derivative, rewrites.BEFORE_PRINTING, a)]
        + (["evaluated in float64 and rounded once to the input's dtype."] if candidate.float64 else []),
        "casts": casts,
        "backward": code,
        "saves": repr(candidate.saves),
    }


def activation_context(a, choices=None):
    evaluated = before_printing(a.derivative)
    return {
        "forward_notes": notes(a.forward, rewrites.stages(a.forward, a.forward_rewrites, a), a),
        "notes": notes(a.raw_derivative, a.stages, a),
        "name": a.name,
        "forward_math": plain(a.expression),
        "parameters": ", ".join("{} = {}".format(k, v) for k, v in a.parameters.items()),
        "raw_math": plain(a.raw_derivative),
        "safe_math": plain(evaluated),
        "rewritten": evaluated != a.raw_derivative,
        "forward": printed(a.safe_forward),
        "backward": printed(a.vjp),
        "saves": repr(a.saves),
        "accurate": accurate_context(a, accurate.load_choices() if choices is None else choices),
    }


def vector_layer_context(layer):
    assignments, forward = torch_statements(before_printing(layer.stable_forward), layer.definitions)
    return {
        "name": layer.name,
        "forward_math": plain(layer.forward),
        "stable_math": ", ".join([plain(layer.stable_forward)] + ["{} = {}".format(symbol, plain(value))
                                                                  for symbol, value in layer.definitions]),
        "forward_notes": notes(layer.forward, rewrites.stages(layer.forward, layer.forward_rewrites, layer), layer),
        "term_math": plain(layer.term), "reduced_math": plain(layer.reduced),
        "pieces": ", ".join("{} = {}".format(k, plain(v)) for k, v in layer.pieces.items()),
        "raw_math": plain(layer.raw_vjp),
        "vjp_math": plain(layer.vjp),
        "notes": notes(layer.raw_vjp, layer.stages, layer),
        "forward_assignments": assignments,
        "forward": forward,
        "backward": printed(layer.vjp),
        "saves": repr(layer.saves),
    }


# What a 'mean' loss divides by: the code that counts it, and the words for the comment.
_COUNTS = {losses.numel: ("input.numel()", "every element"), losses.batch: ("input.shape[0]", "the batch")}


def loss_context(loss):
    mean = rewrites.apply(loss.expression("mean"), loss.reduction_rewrites, loss)
    gradient = rewrites.apply(loss.gradient("mean"), loss.reduction_rewrites, loss)
    return {
        "notes": [r.note(loss) for r in loss.forward_rewrites + loss.backward_rewrites + loss.reduction_rewrites],
        "name": loss.name,
        "count": loss.count.name, "count_code": _COUNTS[loss.count][0], "count_doc": _COUNTS[loss.count][1],
        "forward_math": plain(loss.expression("mean", safe=False)),
        "raw_math": plain(loss.scale("mean", loss.count) * loss.raw_derivative),
        "safe_math": plain(before_printing(gradient)),
        "rewritten": True,
        "forward": printed(mean),
        "backward": printed(gradient),
    }


def context():
    choices = accurate.load_choices()
    return {
        "linear": linear_context(),
        "activations": [activation_context(a, choices) for a in activations.ACTIVATIONS],
        "vector_layers": [vector_layer_context(v) for v in vector_layers.VECTOR_LAYERS],
        "losses": [loss_context(loss) for loss in losses.LOSSES],
    }
