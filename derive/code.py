"""The torch side: what templates/layers_body.py.j2 needs, as printed strings."""
import sympy as sp

from derive import activations, linear, losses, rewrites
from derive.symbols import input, result
from derive.torch_printer import torch_code


def _math(expr):
    """A one-line plain-text rendering for the comments beside the code."""
    return sp.sstr(expr)


def linear_context():
    backward = []
    args = {"input": "grad, weight", "weight": "grad, input", "bias": "grad"}
    for name, expr in linear.vjp().items():
        backward.append({"name": name, "args": args[name], "math": _math(expr), "code": torch_code(expr)})
    return {
        "doc": "result = input @ weight^T + bias (rows); z = W x + b (columns, the theory)",
        "forward_math": _math(linear.forward),
        "forward": torch_code(linear.forward),
        "backward": backward,
    }


def _rewrite_notes(functions):
    """The first line of each rewrite's docstring, for the comment above its code."""
    return [getattr(f, "func", f).__doc__.strip().splitlines()[0] for f in functions]


def masks_on_result(expr, forward):
    """Piecewise conditions on input -> the same conditions on result (same truth set).

    Applied only where every piece's value is free of input and each condition on result
    holds for exactly the real inputs that the original holds for (checked with solveset).
    The backward then keeps the result, which the next layer keeps anyway, instead of the
    input: one tensor less between forward and backward (autograd's ReLU saves its result too).
    """
    if not isinstance(expr, sp.Piecewise) or result in expr.free_symbols:
        return None
    pieces = []
    for value, condition in expr.args:
        if input in value.free_symbols:
            return None
        if condition is not sp.true:
            on_result = condition.subs(input, result)
            same = sp.solveset(on_result.subs(result, forward), input, sp.S.Reals) == \
                sp.solveset(condition, input, sp.S.Reals)
            if not same or input in on_result.free_symbols:
                return None
            condition = on_result
        pieces.append((value, condition))
    return sp.Piecewise(*pieces)


def activation_context(a):
    notes = a.rewrites + ((rewrites.in_terms_of_result,) if a.backward_in == "result" else ())
    derivative, vjp = a.derivative, a.vjp
    on_result = masks_on_result(vjp, a.forward)
    if on_result is not None:
        notes += (masks_on_result,)
        derivative, vjp = masks_on_result(sp.piecewise_fold(derivative), a.forward), on_result
    saves = tuple(s.name for s in (input, result) if s in vjp.free_symbols)
    return {
        "notes": _rewrite_notes(notes),
        "name": a.name,
        "forward_math": _math(a.forward),
        "raw_math": _math(a.raw_derivative),
        "safe_math": _math(derivative),
        "rewritten": derivative != a.raw_derivative,
        "forward": torch_code(a.forward),
        "backward": torch_code(vjp),
        "saves": repr(saves),
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
    return {
        "linear": linear_context(),
        "activations": [activation_context(a) for a in activations.ACTIVATIONS],
        "losses": [loss_context(loss) for loss in losses.LOSSES],
    }
