"""One section of the page per layer of the catalogue, as MathML, code and figures.

Every section is built from the layer's row the same way; the only distinction is the kind
of row (an elementwise activation, a loss, the affine layer), never its name. What a section
shows is what derive/ holds: the expressions are printed from the row's own SymPy objects, the
code is the generated function's source, the curves are sampled from the generated functions.
"""
import inspect
import re

import sympy as sp
from markupsafe import Markup, escape

from derive import accurate, activations, code, linear, losses, mathml_printer, rewrites, vector_layers
from derive.functions import ElementSum
from derive.symbols import input, result
from derive.web import figures
from generated import layers as generated

JACOBIAN_SIZE = 3  # the size at which a layer's Jacobian is written out in full


def mathml(expr, display="block"):
    """A ``<math>`` element, marked safe for the template (everything else is escaped)."""
    return Markup(mathml_printer.mathml(expr, display))


def note(rewrite, row):
    """A rewrite's own note for this row (its parameters filled in), escaped, with its
    ``literal`` spans as code."""
    return Markup(re.sub(r"``(.+?)``", r"<code>\\1</code>", str(escape(rewrite.note(row)))))


def entry(label, expr, note_=None):
    """One formula of a section: a label (or a rewrite's note) above it."""
    return {"label": label, "math": mathml(expr), "note": note_}


def steps(expr, stages, row, shown=lambda e: e):
    """An entry for each rewrite of ``stages`` ([(rewrite, expression after it)], from expr)
    that changed something: its note and ``shown`` of the expression after it; then for each
    spelling every expression gets before printing that changes it."""
    done, before = [], expr
    for r, after in stages:
        if after != before:
            done.append((r, after))
        before = after
    done += rewrites.steps(before, rewrites.BEFORE_PRINTING, row)
    return [entry(None, shown(after), Markup("Rewrite: ") + note(r, row)) for r, after in done]


def one_sided(expr, point, side):
    """The limit of a piecewise-continuous expr at point from the left (side -1) or the
    right (+1): the piece that holds just beside the point, evaluated at it. Kinks are far
    apart (0.5 at least), so a millionth away is inside the neighbouring interval."""
    folded = sp.piecewise_fold(expr)
    if isinstance(folded, sp.Piecewise):
        probe = point + side * sp.Rational(1, 10**6)
        for value, condition in folded.args:
            if condition.subs(input, probe) == sp.true:
                return value.subs(input, point)
    return folded.subs(input, point)


def generated_code(name):
    """The source of every generated function of the layer: NAME_forward, NAME_backward and
    NAME_backward_<input>, in the order the generated module defines them."""
    pattern = re.compile(r"{}_(forward|backward)(_\w+)?$".format(re.escape(name)))
    functions = [f for fname, f in vars(generated).items()
                 if pattern.match(fname) and inspect.isfunction(f)]
    functions.sort(key=lambda f: f.__code__.co_firstlineno)
    return "\n\n".join(inspect.getsource(f).rstrip() for f in functions)


def exact_number(value):
    """A float as SymPy prints it best: a small fraction when it is exactly that float
    (0.01 is 1/100), else all its digits (sigmoid(20) is 0.9999999979388463, not 1)."""
    fraction = sp.nsimplify(value, rational=True)
    if fraction.q <= 1000 and float(fraction) == value:
        return fraction
    return sp.Float(repr(value))


def kink_rows(a):
    """Each kink of the row (PyTorch's convention, data), with the value the generated
    backward returns there, the one-sided limits, and SymPy's raw f' at that point."""
    rows = []
    backward = figures.derivative_function(a)
    for point, convention in sorted(a.kink_values.items(), key=lambda kv: float(kv[0])):
        rows.append({
            "at": mathml(point, display="inline"),
            "convention": mathml(convention, display="inline"),
            "value": mathml(exact_number(backward(float(point))), display="inline"),
            "left": mathml(one_sided(a.safe_derivative, point, -1), display="inline"),
            "right": mathml(one_sided(a.safe_derivative, point, +1), display="inline"),
            "raw": mathml(a.raw_derivative.subs(input, point), display="inline"),
        })
    return rows


def section(name, kind, summary, forward_expr, **fields):
    """A section's fields, with the ones a kind of layer lacks left empty."""
    base = {"name": name, "kind": kind, "summary": summary, "index_forward": mathml(forward_expr, "inline"),
            "parameters": [], "forward": [], "derivation_title": "Derivative", "derivation": [],
            "kinks": [], "at_nan": None, "jacobian": None, "vjp": [], "code": generated_code(name),
            "figure": None}
    base.update(fields)
    return base


def accurate_profile(a, choices):
    """The form ``MLP(..., numerics="accurate")`` evaluates, as `make accuracy` chose it
    (derive/accurate_forms.json), with the notes of the rewrites that made it."""
    candidate = accurate.chosen(a, choices)
    context = code.accurate_context(a, choices)
    if context["same"]:
        return [{"label": Markup("The accurate profile (<code>numerics=\"accurate\"</code>) evaluates this same "
                                 "form: it measured best."), "math": None, "note": None}]
    said = escape("The accurate profile (numerics=\"accurate\") evaluates {}: ".format(candidate.key))
    notes = Markup(" ").join(escape(n) for n in context["notes"])
    return [entry(None, rewrites.before_printing(candidate.derivative), Markup(said) + notes)]


def activation_section(a, choices=None):
    jacobian, z = a.jacobian(JACOBIAN_SIZE)
    as_result = lambda e: sp.Eq(result, e, evaluate=False)  # noqa: E731
    evaluated = rewrites.before_printing(a.derivative)
    changed = evaluated != a.raw_derivative
    return section(
        a.name, "activation", "elementwise, result = f(input)", a.forward,
        parameters=[(str(k), mathml(v, "inline")) for k, v in a.defaults.items()],
        forward=[entry(None, as_result(a.forward))]
        + steps(a.forward, rewrites.stages(a.forward, a.forward_rewrites, a), a, as_result),
        derivation=[entry("f\u2032 as SymPy derives it:", a.raw_derivative)]
        + steps(a.raw_derivative, a.stages, a)
        + [entry("f\u2032 as the generated backward evaluates it{}:".format(
            "" if changed else " (SymPy's form, unchanged)"), evaluated)]
        + accurate_profile(a, choices),
        kinks=kink_rows(a),
        at_nan=None if a.nan_value is None else mathml(a.nan_value, "inline"),
        jacobian={"size": JACOBIAN_SIZE, "at": mathml(z.T, "inline"), "math": mathml(jacobian)},
        vjp=[("input", mathml(rewrites.before_printing(a.vjp)))],
        figure=Markup(figures.activation_figure(a)),
    )


def loss_section(loss):
    scale = loss.scale("mean", loss.count)
    reduced = lambda term: scale * ElementSum(term)  # noqa: E731
    gradient = rewrites.before_printing(loss.gradient("mean"))
    return section(
        loss.name, "loss", "a loss, summed over the elements, divided by {}".format(loss.count),
        loss.expression("mean", safe=False),
        forward=[entry(None, loss.expression("mean", safe=False))]
        + steps(loss.term, rewrites.stages(loss.term, loss.forward_rewrites, loss), loss, reduced),
        derivation_title="Gradient",
        derivation=[entry("dJ/dinput as SymPy derives it{}:".format(
            "" if loss.differentiate == "term" else " (from the loss as computed, after its rewrites)"),
            scale * loss.raw_derivative)]
        + steps(loss.raw_derivative, rewrites.stages(loss.raw_derivative, loss.backward_rewrites, loss), loss,
                lambda d: scale * d)
        + [entry("dJ/dinput as the generated backward evaluates it:", gradient)],
        vjp=[("input", mathml(gradient))],
        figure=Markup(figures.loss_figure(loss)),
    )


def vector_section(layer):
    """A vector layer (each output reads the whole row): its definition and the stable
    forward it is printed as, the chain rule through the row's reduction S, the VJP in terms
    of result, and the Jacobian at n = JACOBIAN_SIZE, componentwise from the definition."""
    jacobian, z = layer.jacobian(JACOBIAN_SIZE)
    in_shares, shares = layer.jacobian_in_shares(JACOBIAN_SIZE)
    as_result = lambda e: sp.Eq(result, e, evaluate=False)  # noqa: E731
    h, k = sp.Function("h")(input, vector_layers.S), sp.Function("k")(input)
    return section(
        layer.name, "vector", "over each row's features: result = h(input, S), S = \u2211 k(input)",
        layer.forward,
        forward=[entry(None, as_result(layer.forward))]
        + steps(layer.forward, rewrites.stages(layer.forward, layer.forward_rewrites, layer), layer, as_result)
        + [entry("where", sp.Eq(symbol, definition, evaluate=False)) for symbol, definition in layer.definitions],
        derivation_title="Backward, by the chain rule through S",
        derivation=[entry(None, sp.Eq(h, layer.term, evaluate=False)), entry(None, sp.Eq(k, layer.reduced, evaluate=False))]
        + [entry("{}:".format(name), piece) for name, piece in layer.pieces.items()]
        + [entry("grad\u00b7dh/dinput + dk/dinput\u00b7\u2211 grad\u00b7dh/dS, from SymPy's pieces:", layer.raw_vjp)]
        + steps(layer.raw_vjp, layer.stages, layer)
        + [entry("as the generated backward evaluates it:", rewrites.before_printing(layer.vjp))],
        jacobian={"size": JACOBIAN_SIZE, "at": mathml(z.T, "inline"), "math": mathml(jacobian),
                  "also": [entry("the same, in s\u2096 = k(z\u2096)/S:", in_shares)]},
        vjp=[("input", mathml(rewrites.before_printing(layer.vjp)))],
        figure=Markup(figures.vector_figure(layer)),
    )


def linear_section():
    sample = linear.per_sample()
    return section(
        "linear", "linear", "affine, batched rows", linear.forward,
        forward=[entry(None, sp.Eq(sp.Symbol("result"), linear.forward, evaluate=False)),
                 entry("z (one sample, the theory's columns):", sp.Eq(sp.Symbol("z"), linear.z, evaluate=False))],
        jacobian={"size": None, "at": None, "math": mathml(sample["jacobian"])},
        vjp=[(name, mathml(expr)) for name, expr in linear.vjp().items()],
    )


def sections():
    choices = accurate.load_choices()
    return ([linear_section()]
            + [activation_section(a, choices) for a in activations.ACTIVATIONS]
            + [vector_section(v) for v in vector_layers.VECTOR_LAYERS]
            + [loss_section(loss) for loss in losses.LOSSES])

