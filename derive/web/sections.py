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

from derive import activations, linear, losses, mathml_printer, rewrites
from derive.functions import ElementSum
from derive.symbols import input, result
from derive.web import figures
from generated import layers as generated

JACOBIAN_SIZE = 3  # the size at which a layer's Jacobian is written out in full


def mathml(expr, display="block"):
    """A ``<math>`` element, marked safe for the template (everything else is escaped)."""
    return Markup(mathml_printer.mathml(expr, display))


def note(rewrite):
    """What a rewrite does and why: its docstring, whole (a partial keeps the function's),
    escaped, with its ``literal`` spans as code."""
    text = escape(inspect.getdoc(getattr(rewrite, "func", rewrite)))
    return Markup(re.sub(r"``(.+?)``", r"<code>\1</code>", str(text)))


def steps(expr, rewrite_list, shown=lambda e: e):
    """[{note, math}]: each rewrite's note and ``shown`` of the expression after it, in turn."""
    out = []
    for rewrite in rewrite_list:
        expr = rewrite(expr)
        out.append({"note": note(rewrite), "math": mathml(shown(expr))})
    return out


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
    """The points where f' (as evaluated) jumps, each with the value the generated backward
    returns there, the one-sided limits, and SymPy's raw f' at that point."""
    rows = []
    backward = figures.derivative_function(a)
    for point in figures.kinks(a.safe_derivative):
        rows.append({
            "at": mathml(point, display="inline"),
            "value": mathml(exact_number(backward(float(point))), display="inline"),
            "left": mathml(sp.limit(a.safe_derivative, input, point, "-"), display="inline"),
            "right": mathml(sp.limit(a.safe_derivative, input, point, "+"), display="inline"),
            "raw": mathml(a.raw_derivative.subs(input, point), display="inline"),
        })
    return rows


def activation_section(a):
    chain = a.rewrites + ((rewrites.in_terms_of_result,) if a.backward_in == "result" else ())
    derivative_steps = steps(a.raw_derivative, a.rewrites)
    if a.backward_in == "result":
        derivative_steps.append({"note": note(rewrites.in_terms_of_result), "math": mathml(a.derivative)})
    jacobian, z = a.jacobian(JACOBIAN_SIZE)
    return {
        "name": a.name, "kind": "activation",
        "summary": "elementwise, result = f(input)",
        "index_forward": mathml(a.forward, display="inline"),
        "forward": [("result", mathml(sp.Eq(result, a.forward, evaluate=False)))],
        "raw": mathml(a.raw_derivative),
        "steps": derivative_steps,
        "evaluated": mathml(a.derivative),
        "rewritten": bool(chain),
        "jacobian": {"size": JACOBIAN_SIZE, "at": mathml(z.T, display="inline"), "math": mathml(jacobian)},
        "vjp": [("input", mathml(a.vjp))],
        "kinks": kink_rows(a),
        "code": generated_code(a.name),
        "figure": Markup(figures.activation_figure(a)),
    }


def loss_section(loss):
    forward = [("J", mathml(loss.expression("mean", safe=False)))]
    if loss.safe_term != loss.term:
        forward.append(("J as evaluated", mathml(loss.expression("mean"))))
    return {
        "name": loss.name, "kind": "loss",
        "summary": "loss over numel elements, PyTorch's reduction='mean'",
        "index_forward": mathml(loss.expression("mean", safe=False), display="inline"),
        "forward": forward,
        "raw": mathml(loss.scale("mean") * loss.raw_derivative),
        "steps": steps(loss.term, loss.forward_rewrites, lambda term: ElementSum(term) * loss.scale("mean"))
        + steps(loss.raw_derivative, loss.backward_rewrites, lambda d: loss.scale("mean") * d),
        "evaluated": mathml(loss.gradient("mean")),
        "rewritten": bool(loss.forward_rewrites or loss.backward_rewrites),
        "jacobian": None,
        "vjp": [("input", mathml(loss.gradient("mean")))],
        "kinks": [],
        "code": generated_code(loss.name),
        "figure": Markup(figures.loss_figure(loss)),
    }


def linear_section():
    sample = linear.per_sample()
    return {
        "name": "linear", "kind": "linear",
        "summary": "affine, batched rows",
        "index_forward": mathml(linear.forward, display="inline"),
        "forward": [("result", mathml(sp.Eq(sp.Symbol("result"), linear.forward, evaluate=False))),
                    ("z (one sample, the theory's columns)", mathml(sp.Eq(sp.Symbol("z"), linear.z,
                                                                           evaluate=False)))],
        "raw": None, "steps": [], "evaluated": None, "rewritten": False,
        "jacobian": {"size": None, "at": None, "math": mathml(sample["jacobian"])},
        "vjp": [(name, mathml(expr)) for name, expr in linear.vjp().items()],
        "kinks": [],
        "code": generated_code("linear"),
        "figure": None,
    }


def sections():
    return ([linear_section()]
            + [activation_section(a) for a in activations.ACTIVATIONS]
            + [loss_section(loss) for loss in losses.LOSSES])

