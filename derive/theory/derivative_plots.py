"""1.5(c): the graphs of the derivatives, and their formulas as a reader writes them.

Each formula is ``readable.derivative`` of the layer row (Softplus' = sigma, GELU' = Phi + x phi),
proven equal to the derivative the generated code evaluates in tests/test_theory.py; each
curve is sampled from that formula. A value at a kink is the row's (PyTorch's) convention. A
branch that only an implementation has (Softplus' above its threshold) becomes a footnote.
"""
import sympy as sp

from derive import activations
from derive.latex_printer import latex
from derive.symbols import input
from derive.theory import readable

PLOTTED = ("relu", "leaky_relu", "softplus", "gelu")
PLOT_RANGE, PLOT_STEP = 4, sp.Rational(1, 10)
Y_RANGE = (-0.25, 1.25)
SMALL = 0.05  # a constant piece closer to 0 than this fraction of the y range gets a label

X = sp.Symbol("x", real=True)


def derivative_function(name):
    """f'(input) as the theory writes it, as a float function."""
    d = readable.elementary(readable.derivative(activations.BY_NAME[name]))
    return sp.lambdify(input, d, modules="math")


def _number(v):
    text = "{:.6f}".format(v).rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def curve(name):
    """Segments of (x, f'(x)) between jumps; the value at each jump point; the one-sided
    limits there that differ from it (drawn as open circles); a label for each constant
    piece that would look like 0 at the plot's scale."""
    fn = derivative_function(name)
    steps = int(2 * PLOT_RANGE / PLOT_STEP)
    xs = [float(-PLOT_RANGE + k * PLOT_STEP) for k in range(steps + 1)]
    segments, current, dots, limits = [], [], [], []
    for xv in xs:
        left, right, value = fn(xv - 1e-9), fn(xv + 1e-9), fn(xv)
        if abs(left - right) > 1e-6:
            if current:
                current.append((xv, left))
                segments.append(current)
            dots.append((xv, value))
            limits.extend((xv, v) for v in (left, right) if abs(v - value) > 1e-6)
            current = [(xv, right)]
        else:
            current.append((xv, value))
    segments.append(current)
    labels = []
    for sg in segments:
        values = {round(v, 12) for _, v in sg}
        if len(values) == 1 and 0 < abs(sg[0][1]) < SMALL * (Y_RANGE[1] - Y_RANGE[0]):
            middle = sg[len(sg) // 4]  # clear of the axis and its tick labels
            labels.append({"at": "({},{})".format(_number(middle[0]), _number(middle[1])),
                           "text": _number(middle[1])})
    fmt = lambda pts: " ".join("({},{})".format(_number(a), _number(b)) for a, b in pts)
    return {"segments": [fmt(sg) for sg in segments], "dots": fmt(dots), "limits": fmt(limits),
            "labels": labels}


def _footnote(a):
    """What an implementation does that the formula does not: the dropped cutoff branches of
    the forward (Softplus is x above its threshold), in words and math."""
    notes = []
    for value, condition in readable.cutoffs(sp.piecewise_fold(a.forward)):
        notes.append(r"PyTorch's ${}$ returns ${}$ where ${}$, which equals ${}$ there to float32 rounding; "
                     r"its derivative there is ${}$".format(
                         a.latex, latex(value.subs(input, X)), latex(condition.subs(input, X)),
                         latex(readable.forward(a).subs(input, X)),
                         latex(sp.diff(value, input).subs(input, X))))
    return "; ".join(notes)


def plots_context():
    plots, named = [], set()
    for name in PLOTTED:
        a = activations.BY_NAME[name]
        d, f = readable.derivative(a), readable.forward(a)
        named |= {type(e) for e in (d + f).atoms(sp.Function) if isinstance(e, readable.NAMED)}
        # The terms of a sum from the simplest: Phi(x) + x phi(x).
        d = d.subs(input, X)
        shown = sp.Add(*sorted(d.args, key=lambda t: (sp.count_ops(t), str(t))), evaluate=False) if d.is_Add else d
        plots.append({"name": name, "title": a.latex, "curve": curve(name),
                      "forward": latex(f.subs(input, X)), "derivative": latex(shown, order="none"),
                      "footnote": _footnote(a)})
    definitions = [{"name": latex(fn(X)), "value": latex(fn.display(X))}
                   for fn in readable.NAMED if fn in named]
    return {"plots": plots, "definitions": definitions, "ymin": Y_RANGE[0], "ymax": Y_RANGE[1],
            "xmax": PLOT_RANGE}
