"""The torch side: what templates/layers_body.py.j2 needs, as printed strings."""
import sympy as sp

from derive import accurate, activations, linear, losses, rewrites
from derive.functions import HighHalf
from derive.symbols import grad
from derive.torch_printer import torch_code


def _math(expr):
    """A one-line plain-text rendering for the comments beside the code."""
    return sp.sstr(expr)


def linear_context():
    backward = []
    for name, expr in linear.vjp().items():
        # The function takes what its formula reads: grad, then the layer's other tensors.
        reads = sorted(s.name for s in expr.atoms(sp.MatrixSymbol) if s != linear.grad)
        backward.append({"name": name, "args": ", ".join(["grad"] + reads), "math": _math(expr),
                         "code": torch_code(expr)})
    return {
        "doc": "result = input @ weight^T + bias (rows); z = W x + b (columns, the theory)",
        "forward_math": _math(linear.forward),
        "forward": torch_code(linear.forward),
        "backward": backward,
    }


def _rewrite_notes(functions):
    """The first line of each rewrite's docstring, for the comment above its code."""
    return [getattr(f, "func", f).__doc__.strip().splitlines()[0] for f in functions]


def activation_context(a, choices=None):
    notes = a.rewrites + ((rewrites.in_terms_of_result,) if a.backward_in == "result" else ())
    return {
        "notes": _rewrite_notes(notes),
        "name": a.name,
        "forward_math": _math(a.forward),
        "raw_math": _math(a.raw_derivative),
        "safe_math": _math(a.derivative),
        "rewritten": a.derivative != a.raw_derivative,
        "forward": torch_code(a.forward),
        "backward": torch_code(a.vjp),
        "saves": repr(a.saves),
        "accurate": accurate_context(a, accurate.load_choices() if choices is None else choices),
    }


def accurate_backward(candidate):
    """The body of ``<name>_backward_accurate`` for one accurate-profile candidate: lines
    that recast the saved tensors to float64 when the form is evaluated there, then the
    return line. Raises NotImplementedError for a form the printer cannot print."""
    lines = ["{0} = {0}.double()".format(s) for s in candidate.saves] if candidate.float64 else []
    derivative = candidate.derivative
    # A subexpression used more than once (a split's high half) is computed once, by name.
    for i, value in enumerate(sorted(derivative.atoms(HighHalf), key=str)):
        name = sp.Symbol("high" if i == 0 else "high{}".format(i))
        lines.append("{} = {}".format(name, torch_code(value)))
        derivative = derivative.subs(value, name)
    if not candidate.float64:
        return lines, torch_code(sp.piecewise_fold(grad * derivative))
    return lines, "grad*({}).to(grad.dtype)".format(torch_code(derivative))


def accurate_context(a, choices):
    candidate = accurate.chosen(a, choices)
    casts, code = accurate_backward(candidate)
    same = not casts and code == torch_code(a.vjp)
    return {
        "same": same,  # the torch profile's form won: the accurate profile reuses its backward
        "key": candidate.key,
        "math": _math(candidate.derivative),
        "notes": [accurate.BY_NAME[n].note for n in candidate.rewrites]
        + (["evaluated in float64 and rounded once to the input's dtype"] if candidate.float64 else []),
        "casts": casts,
        "backward": code,
        "saves": repr(candidate.saves),
    }


def loss_context(loss):
    return {
        "notes": _rewrite_notes(loss.forward_rewrites + loss.backward_rewrites),
        "name": loss.name,
        "forward_math": _math(loss.expression("mean", safe=False)),
        "raw_math": _math(loss.scale("mean") * loss.raw_derivative),
        "safe_math": _math(loss.gradient("mean")),
        "rewritten": loss.derivative != loss.raw_derivative or loss.safe_term != loss.term,
        "forward": torch_code(loss.expression("mean")),
        "backward": torch_code(loss.gradient("mean")),
    }


def context():
    choices = accurate.load_choices()
    return {
        "linear": linear_context(),
        "activations": [activation_context(a, choices) for a in activations.ACTIVATIONS],
        "losses": [loss_context(loss) for loss in losses.LOSSES],
    }
