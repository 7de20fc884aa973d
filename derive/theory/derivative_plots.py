"""1.5(c): the graphs of the derivatives, sampled from the same derivatives the generated
code evaluates (PyTorch's values at the kinks included)."""
import sympy as sp

from derive import activations
from derive.latex_printer import latex
from derive.symbols import input

PLOTTED = ("relu", "leaky_relu", "softplus", "gelu")
PLOT_RANGE, PLOT_STEP = 4, sp.Rational(1, 10)


def derivative_function(name):
    """f'(input) as the generated code computes it, as a float function."""
    a = activations.BY_NAME[name]
    return sp.lambdify(input, a.safe_derivative, modules="math")


def _number(v):
    text = "{:.6f}".format(v).rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def curve(name):
    """Segments of (x, f'(x)) between jumps; the value at each jump point; the one-sided
    limits there that differ from it (drawn as open circles)."""
    fn = derivative_function(name)
    steps = int(2 * PLOT_RANGE / PLOT_STEP)
    xs = [float(-PLOT_RANGE + k * PLOT_STEP) for k in range(steps + 1)]
    segments, current, dots, limits = [], [], [], []
    for k, xv in enumerate(xs):
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
    fmt = lambda pts: " ".join("({},{})".format(_number(a), _number(b)) for a, b in pts)
    return {"segments": [fmt(sg) for sg in segments], "dots": fmt(dots), "limits": fmt(limits)}


def plots_context():
    plots = []
    for name in PLOTTED:
        a = activations.BY_NAME[name]
        plots.append({"name": name, "title": a.latex, "curve": curve(name),
                      "derivative": latex(a.safe_derivative.subs(input, sp.Symbol("x", real=True)))})
    return {"plots": plots}
