"""Inline SVG pictures of a layer: f and f' over [-6, 6], sampled from the generated code.

The curves are not drawn from SymPy's expressions but from generated/layers.py's own
NAME_forward and NAME_backward (float64, grad = 1), so the page shows what the code computes,
PyTorch's values at the kinks included. The kinks themselves (where f' jumps) come from the
derivative's Piecewise conditions and Heaviside arguments; as in theory.pdf, the value the code
returns at a kink is a filled dot and a one-sided limit that differs from it an open circle.
"""
import inspect
import math

import sympy as sp
import torch
from sympy.calculus.util import continuous_domain

from derive.symbols import input, target
from generated import layers as generated

RANGE = (-6, 6)
SAMPLES = 480
LOSS_SAMPLES = 120  # a loss is evaluated point by point
LOSS_TARGET = 1  # a loss's curves are drawn for one element with this target
WIDTH, HEIGHT, MARGIN = 420, 256, 34
COLORS = {"f": "#1f5fa8", "df": "#c2410c"}


def _call(function, **tensors):
    """Call a generated function with the tensors its signature names (grad, input, result,
    target, ...): every generated backward declares what it reads."""
    names = inspect.signature(function).parameters
    return function(**{k: v for k, v in tensors.items() if k in names})


def _elementwise(name):
    """f and f' of an elementwise layer, [x] -> [(f(x), f'(x))], through the generated code."""
    forward = getattr(generated, name + "_forward")
    backward = getattr(generated, name + "_backward")

    def pairs(xs):
        t = torch.tensor([xs], dtype=torch.float64)  # one sample, len(xs) features
        y = _call(forward, input=t)
        dy = _call(backward, grad=torch.ones_like(t), input=t, result=y)
        return list(zip(y[0].tolist(), dy[0].tolist()))
    return pairs


def _loss(name, target_value=LOSS_TARGET):
    """One element's loss and its gradient, [x] -> [(J, dJ/dx)], through the generated code."""
    forward = getattr(generated, name + "_forward")
    backward = getattr(generated, name + "_backward")

    def pairs(xs):  # a loss reduces over its elements: one call per point, numel = 1
        out = []
        for x in xs:
            t = torch.tensor([[float(x)]], dtype=torch.float64)
            tt = torch.full_like(t, float(target_value))
            out.append((_call(forward, input=t, target=tt).item(), _call(backward, input=t, target=tt).item()))
        return out
    return pairs


def derivative_function(a):
    """f'(x) as the generated backward of activation row a computes it."""
    pairs = _elementwise(a.name)
    return lambda x: pairs([x])[0][1]


def kinks(derivative):
    """The real points where a derivative in ``input`` may jump: the boundaries of its
    Piecewise conditions and the zeros of its Heaviside arguments, sorted."""
    boundaries = []
    for piecewise in derivative.atoms(sp.Piecewise):
        for _, condition in piecewise.args:
            boundaries += [r.lhs - r.rhs for r in condition.atoms(sp.core.relational.Relational)]
    boundaries += [h.args[0] for h in derivative.atoms(sp.Heaviside)]
    points = set()
    for expr in boundaries:
        points.update(p for p in sp.solve(expr, input) if p.is_real)
    return sorted(points)


def _domain(expr):
    """The part of RANGE where expr is real and continuous (a loss's log needs (0, 1))."""
    interval = sp.Interval(*RANGE)
    try:
        domain = continuous_domain(expr, input, interval)
    except NotImplementedError:  # SymPy cannot tell (Piecewise): take the whole range
        return interval
    return domain if isinstance(domain, sp.Interval) else interval


def _grid(domain, breaks, samples):
    """Sample segments of the domain, split at the breaks; a break is approached to within a
    hair, so one-sided limits are drawn."""
    lo, hi = float(domain.start), float(domain.end)
    hair, edge = 1e-9 * (hi - lo), 0.02 * (hi - lo)  # an open end is a pole (BCE's log): stop short
    inner = [float(b) for b in breaks if lo < b < hi]
    ends = [lo + (edge if domain.left_open else 0)] + inner + [hi - (edge if domain.right_open else 0)]
    segments = []
    for k, (a, b) in enumerate(zip(ends, ends[1:])):
        a2 = a + (hair if k > 0 else 0)
        b2 = b - (hair if k < len(ends) - 2 else 0)
        count = max(2, int(samples * (b2 - a2) / (hi - lo)))
        segments.append([a2 + (b2 - a2) * i / count for i in range(count + 1)])
    return segments, inner


def _figure(pairs, domain, breaks, labels, title, samples=SAMPLES):
    segments, inner = _grid(domain, breaks, samples)
    curves = {"f": [], "df": []}
    for xs in segments:
        values = pairs(xs)
        curves["f"].append([(x, v[0]) for x, v in zip(xs, values)])
        curves["df"].append([(x, v[1]) for x, v in zip(xs, values)])
    marks = []  # (x, y, filled)
    for k, b in enumerate(inner):
        value = pairs([b])[0][1]
        marks.append((b, value, True))
        for side in (curves["df"][k][-1][1], curves["df"][k + 1][0][1]):
            if abs(side - value) > 1e-6 * max(1.0, abs(value)):
                marks.append((b, side, False))
    return _svg(curves, marks, (float(domain.start), float(domain.end)), labels, title)


def activation_figure(a):
    """f and f' of an elementwise activation over RANGE."""
    return _figure(_elementwise(a.name), _domain(a.forward), kinks(a.safe_derivative),
                   {"f": "f(x)", "df": "f\u2032(x)"}, "{}: f and f\u2032 on [{}, {}]".format(a.name, *RANGE))


def loss_figure(loss):
    """One element's loss and gradient, target fixed, over the part of RANGE where it is defined."""
    term = loss.term.subs(target, LOSS_TARGET)
    domain = _domain(loss.term)
    return _figure(_loss(loss.name), domain, kinks(sp.diff(term, input)),
                   {"f": "\u2113(x, {})".format(LOSS_TARGET), "df": "\u2202\u2113/\u2202x"},
                   "{}: one element, target {}".format(loss.name, LOSS_TARGET), samples=LOSS_SAMPLES)


# -- drawing ----------------------------------------------------------------------------------
def _ticks(lo, hi, count=5):
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / count))
    for m in (1, 2, 5, 10):
        if span / (m * step) <= count:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 10) for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v):
    text = "{:.2f}".format(v).rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _svg(curves, marks, xrange, labels, title):
    ys = [y for segs in curves.values() for seg in segs for _, y in seg if math.isfinite(y)]
    ys += [y for _, y, _ in marks]
    ylo, yhi = min(ys + [0.0]), max(ys + [0.0])
    pad = 0.06 * (yhi - ylo or 1.0)
    ylo, yhi = ylo - pad, yhi + pad
    xlo, xhi = xrange
    left, right, top, bottom = MARGIN + 6, WIDTH - 8, 26, HEIGHT - MARGIN + 8
    px = lambda x: left + (x - xlo) / (xhi - xlo) * (right - left)
    py = lambda y: bottom - (y - ylo) / (yhi - ylo) * (bottom - top)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {} {}" width="{}" height="{}" '
           'role="img">'.format(WIDTH, HEIGHT, WIDTH, HEIGHT), "<title>{}</title>".format(title)]
    out.append('<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" class="frame"/>'.format(
        left, top, right - left, bottom - top))
    for t in _ticks(xlo, xhi):
        out.append('<line x1="{0:.1f}" x2="{0:.1f}" y1="{1:.1f}" y2="{2:.1f}" class="grid"/>'
                   '<text x="{0:.1f}" y="{3:.1f}" class="tick" text-anchor="middle">{4}</text>'.format(
                       px(t), top, bottom, bottom + 13, _fmt(t)))
    for t in _ticks(ylo, yhi):
        out.append('<line x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}" class="grid"/>'
                   '<text x="{3:.1f}" y="{4:.1f}" class="tick" text-anchor="end">{5}</text>'.format(
                       left, right, py(t), left - 4, py(t) + 3.5, _fmt(t)))
    if xlo < 0 < xhi:
        out.append('<line x1="{0:.1f}" x2="{0:.1f}" y1="{1:.1f}" y2="{2:.1f}" class="axis"/>'.format(
            px(0), top, bottom))
    out.append('<line x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}" class="axis"/>'.format(left, right, py(0)))
    for key, segs in curves.items():
        for seg in segs:
            points = " ".join("{:.1f},{:.1f}".format(px(x), py(y)) for x, y in seg if math.isfinite(y))
            out.append('<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>'.format(points, COLORS[key]))
    for x, y, filled in marks:
        out.append('<circle cx="{:.1f}" cy="{:.1f}" r="3.6" stroke="{}" stroke-width="1.6" fill="{}"/>'.format(
            px(x), py(y), COLORS["df"], COLORS["df"] if filled else "white"))
    for k, key in enumerate(("f", "df")):  # the legend, in a row above the frame
        y, left_k = 13, left + 110 * k
        out.append('<line x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}" stroke="{3}" stroke-width="2"/>'
                   '<text x="{4:.1f}" y="{5:.1f}" class="legend">{6}</text>'.format(
                       left_k, left_k + 18, y, COLORS[key], left_k + 23, y + 4, labels[key]))
    out.append("</svg>")
    return "\n".join(out)


VECTOR_SIZE = 3  # a vector layer is drawn along its first input, the others held at 0


def _vector(name, size=VECTOR_SIZE):
    """result_1 and d result_1 / d input_1 at input = (x, 0, ..., 0), [x] -> [(r, dr)],
    through the generated forward and backward (grad = e_1, so the VJP's first entry is J_11)."""
    forward = getattr(generated, name + "_forward")
    backward = getattr(generated, name + "_backward")

    def pairs(xs):
        t = torch.zeros(len(xs), size, dtype=torch.float64)
        t[:, 0] = torch.tensor(xs, dtype=torch.float64)
        y = _call(forward, input=t)
        g = torch.zeros_like(t)
        g[:, 0] = 1
        dy = _call(backward, grad=g, input=t, result=y)
        return list(zip(y[:, 0].tolist(), dy[:, 0].tolist()))
    return pairs


def vector_figure(layer):
    """A vector layer along its first input, the other inputs 0."""
    return _figure(_vector(layer.name), sp.Interval(*RANGE), [],
                   {"f": "result\u2081", "df": "\u2202result\u2081/\u2202input\u2081"},
                   "{}: along input\u2081 = x, the other {} inputs 0".format(layer.name, VECTOR_SIZE - 1))
