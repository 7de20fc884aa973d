"""What ``python -m derive explain softmax`` prints for a vector layer (derive.vector_layers):
the definition, the componentwise Jacobian and its closed form, the VJP from the chain rule
through the row sum down to the formula the backward evaluates, the stable forward, the
generated torch code, and a check of that code against autograd over a sweep with extremes.
"""
import sympy as sp

from derive import vector_layers
from derive.code import vector_layer_context

SWEEP_SCALES = (1e-3, 1.0, 30.0, 1e4)  # logits ~ N(0, scale^2) per row, float64 and float32


def _indent(text, by="    "):
    return "\n".join(by + line for line in text.splitlines())


def against_autograd(name, scales=SWEEP_SCALES, rows=64, width=10):
    """The generated forward and backward against torch.softmax / torch.log_softmax and
    autograd, per dtype, over rows of logits at each scale: the max abs difference and the
    relative one, |ours - theirs| / |theirs| in the 2-norm (elementwise relative differences
    are meaningless where a value cancels to near 0). Returns {dtype name: (forward abs,
    forward rel, backward abs, backward rel, all finite)}."""
    import torch

    from generated import layers
    reference = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}[name]
    layer = layers.ACTIVATIONS[name]
    gen = torch.Generator().manual_seed(0)
    z64 = torch.cat([torch.randn(rows, width, generator=gen, dtype=torch.float64) * s for s in scales])
    grad64 = torch.randn(z64.shape, generator=gen, dtype=torch.float64)
    report = {}
    for dtype in (torch.float64, torch.float32):
        z, grad = z64.to(dtype), grad64.to(dtype)
        result = layer["forward"](z)
        ours = layer["backward"](grad, **{k: {"input": z, "result": result}[k] for k in layer["saves"]})
        leaf = z.clone().requires_grad_()
        with torch.enable_grad():
            theirs = reference(leaf, 1)
            theirs.backward(grad)
        numbers = []
        for a, b in ((result, theirs.detach()), (ours, leaf.grad)):
            diff = a.double() - b.double()
            numbers += [diff.abs().max().item(), (diff.norm() / b.double().norm()).item()]
        finite = bool(torch.isfinite(result).all() and torch.isfinite(ours).all())
        report[str(dtype).replace("torch.", "")] = tuple(numbers) + (finite,)
    return report


def explain(name, size=3, check=True):
    """The explanation as text; ``name`` must be a vector layer."""
    if name not in vector_layers.BY_NAME:
        raise KeyError("{!r} is not a vector layer; expected one of: {}".format(
            name, ", ".join(vector_layers.BY_NAME)))
    layer = vector_layers.BY_NAME[name]
    ctx = vector_layer_context(layer)
    jacobian, shares = layer.jacobian_in_shares(size)
    p = layer.pieces
    out = [
        "{}: a vector layer over each row's features (rows are samples)".format(name),
        "",
        "definition:      result = {}".format(ctx["forward_math"]),
        "                 result_i = h(z_i, S), S = sum_j k(z_j), h = {}, k = {}".format(
            ctx["term_math"], ctx["reduced_math"]),
        "",
        "Jacobian (numerator layout, a row per output), componentwise from the definition at n = {},".format(size),
        "written in s_i = {} / S:".format(ctx["reduced_math"].replace("input", "z_i")),
        _indent(sp.pretty(jacobian, use_unicode=False)),
        "closed form:     J = {}".format(layer.jacobian_closed_form),
        "",
        "VJP (grad^T J, never building J): the chain rule through S,",
        "    grad * dh/dinput + dk/dinput * rowsum(grad * dh/dS)",
        "    with dh/dinput = {}, dh/dS = {}, dk/dinput = {}".format(*(sp.sstr(v) for v in p.values())),
        "  = {}".format(ctx["raw_math"]),
        "  = {}".format(ctx["vjp_math"]),
    ]
    out += ["    rewrite: {}".format(note) for note in ctx["notes"]]
    out += [
        "proved equal to grad^T J at sizes 1..{}: {}".format(
            size, all(layer.vjp_equals_jacobian(n) for n in range(1, size + 1))),
        "",
        "forward as evaluated: {}".format(ctx["stable_math"]),
    ]
    out += ["    rewrite: {}".format(note) for note in ctx["forward_notes"]]
    out += [
        "proved equal to the definition at sizes 1..{}: {}".format(
            size, all(layer.stable_forward_equal(n) for n in range(1, size + 1))),
        "",
        "generated torch code (generated/layers.py):",
        "    def {}_forward(input):".format(name),
    ]
    out += ["        {} = {}".format(k, v) for k, v in ctx["forward_assignments"]]
    out += ["        return {}".format(ctx["forward"]),
            "    def {}_backward(grad, input=None, result=None):".format(name),
            "        return {}".format(ctx["backward"])]
    if check:
        out += ["", "against torch.{} and autograd, logits ~ N(0, s^2), s in {}:".format(
            name, ", ".join("{:g}".format(s) for s in SWEEP_SCALES))]
        for dtype, (fa, fr, ba, br, finite) in against_autograd(name).items():
            out.append("    {:8s} forward max abs {:.2g}, rel (2-norm) {:.2g}; backward max abs {:.2g}, rel {:.2g}; "
                       "all finite: {}".format(dtype, fa, fr, ba, br, finite))
    return "\n".join(out) + "\n"
