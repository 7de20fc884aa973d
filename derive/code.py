"""The torch side: what templates/layers_body.py.j2 needs, as printed strings."""
import sympy as sp

from derive import activations, linear, losses, rewrites, vector_layers
from derive.torch_printer import torch_code, torch_statements


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


def activation_context(a):
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
    }


def vector_layer_context(layer):
    assignments, forward = torch_statements(layer.stable_forward, layer.definitions)
    p = layer.pieces
    return {
        "name": layer.name,
        "forward_math": _math(layer.forward),
        "stable_math": ", ".join([_math(layer.stable_forward)] + ["{} = {}".format(symbol, _math(value))
                                                                  for symbol, value in layer.definitions]),
        "forward_note": _rewrite_notes(layer.forward_rewrites)[0],
        "term_math": _math(layer.term), "reduced_math": _math(layer.reduced),
        "pieces": ", ".join("{} = {}".format(k, _math(v)) for k, v in p.items()),
        "raw_math": _math(layer.raw_vjp),
        "vjp_math": _math(layer.vjp),
        "forward_assignments": assignments,
        "forward": forward,
        "backward": torch_code(layer.vjp),
        "saves": repr(layer.saves),
    }


# What a 'mean' loss divides by: the code that counts it, and the words for the comment.
_COUNTS = {losses.numel: ("input.numel()", "every element"), losses.batch: ("input.shape[0]", "the batch")}


def loss_context(loss):
    return {
        "notes": _rewrite_notes(loss.forward_rewrites + loss.backward_rewrites),
        "name": loss.name,
        "count": loss.count.name, "count_code": _COUNTS[loss.count][0], "count_doc": _COUNTS[loss.count][1],
        "forward_math": _math(loss.expression("mean", safe=False)),
        "raw_math": _math(loss.scale("mean", loss.count) * loss.raw_derivative),
        "safe_math": _math(loss.gradient("mean")),
        "rewritten": loss.derivative != loss.raw_derivative or loss.safe_term != loss.term,
        "forward": torch_code(loss.expression("mean")),
        "backward": torch_code(loss.gradient("mean")),
    }


def context():
    return {
        "linear": linear_context(),
        "activations": [activation_context(a) for a in activations.ACTIVATIONS],
        "vector_layers": [vector_layer_context(v) for v in vector_layers.VECTOR_LAYERS],
        "losses": [loss_context(loss) for loss in losses.LOSSES],
    }
