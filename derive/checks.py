"""Fast checks that ``make derive`` runs before it writes anything (only then: a derive that
changes nothing skips them, as it skips the trial run; tests/test_checks.py runs them always).

They guard the generator, not replace the tests: every rewrite agrees with SymPy's raw
derivative at sample points, every VJP agrees with the numerator-layout Jacobian it stands
for, and the batched Linear formulas agree with component-wise differentiation. The symbolic
proofs and the comparisons with torch live in tests/.
"""
import sympy as sp

from derive import activations, linear, losses, vector_layers
from derive.functions import elementary, expand_element_sums
from derive.rewrites import before_printing
from derive.symbols import grad, input, result, target

# Rewrite and raw must agree at these points, a row's kinks left out.
POINTS = (-3.5, -0.75, 0.4, 2.25, 24.0)
TOLERANCE = 1e-12


class DerivationError(AssertionError):
    pass


def _close(a, b, what):
    a, b = complex(sp.N(a, 17)), complex(sp.N(b, 17))  # evalf: 17 correct digits, for 1e-12
    if abs(a - b) > TOLERANCE * max(1.0, abs(b)):
        raise DerivationError("{}: {} != {}".format(what, a, b))


def check_activation(a):
    # What the code evaluates (the printing spellings, written back out) equals SymPy's raw f'.
    # (xreplace, not subs: a few times faster, and every value here is a plain number.)
    evaluated = elementary(before_printing(a.derivative))
    for p in (sp.Rational(str(p)) for p in POINTS if p not in a.kink_values):
        at = {input: p, result: a.forward.xreplace({input: p})}
        _close(evaluated.xreplace(at), a.raw_derivative.xreplace({input: p}), "{} rewrite at {}".format(a.name, p))
    # grad times f' is the VJP: the diagonal of the numerator-layout Jacobian, which is
    # diagonal since result_i reads input_i alone (tests/test_layers.py compares SymPy's
    # full Jacobian with torch's).
    g = sp.Rational(-17, 10)
    for p in (sp.Rational(str(POINTS[1])), sp.Rational(str(POINTS[3]))):
        at = {input: p, result: a.forward.xreplace({input: p}), grad: g}
        _close(elementary(before_printing(a.vjp)).xreplace(at), g * a.raw_derivative.xreplace({input: p}),
               "{} VJP at {}".format(a.name, p))


def check_linear(batch=2, n_in=3, n_out=2):
    sizes = {linear.B: batch, linear.n: n_in, linear.m: n_out}
    explicit = {s: linear.explicit(s, sizes) for s in (linear.input, linear.weight, linear.bias, linear.grad)}
    result_ = explicit[linear.input] * explicit[linear.weight].T + sp.ones(batch, 1) * explicit[linear.bias].T
    components = sorted(set().union(*(m.free_symbols for m in explicit.values())), key=str)
    # A polynomial in the components: Poly.diff is exact and much faster than sympy.diff here.
    pairing = sp.Poly(sum(explicit[linear.grad].multiply_elementwise(result_)), *components)
    for name, formula in linear.vjp().items():
        symbol = {s.name: s for s in explicit}[name]
        expected = explicit[symbol].applyfunc(lambda c: pairing.diff(c).as_expr())
        sized = {s.subs(sizes): value for s, value in explicit.items()}
        got = sp.Matrix(formula.subs(sizes).subs(sized).doit())
        if got.shape != expected.shape:  # denominator layout: shaped like the variable
            raise DerivationError("linear dJ/d{} is {} x {}, but {} is {} x {}".format(
                name, *got.shape, name, *expected.shape))
        if (got - expected).expand() != sp.zeros(*expected.shape):
            raise DerivationError("linear dJ/d{}: {} != {}".format(name, got, expected))


def check_loss(loss, count=3):
    ys = sp.symbols("yhat_0:{}".format(count), real=True)
    ts = sp.symbols("t_0:{}".format(count), real=True)
    at = dict(zip(ys, (0.2, 0.55, 0.9)))
    at.update(zip(ts, (0.0, 1.0, 0.25)))
    # The loss is a sum of per-element terms, so dtotal/dyhat_k is the scale times the
    # derivative of term k alone (differentiating the whole sum re-derives every term's
    # clamps for nothing).
    term_derivative = sp.diff(loss.term, input)
    for reduction in losses.REDUCTIONS:
        scale = loss.scale(reduction, count)
        total = scale * sum(loss.term.subs({input: y, target: t}) for y, t in zip(ys, ts))
        for y, t in zip(ys, ts):
            got = loss.gradient(reduction).xreplace({loss.count: count, input: y, target: t})
            expected = scale * term_derivative.xreplace({input: at[y], target: at[t]})
            _close(got.xreplace(at), expected, "{} ({}) gradient".format(loss.name, reduction))
        safe = loss.expression(reduction).xreplace({loss.count: count})
        safe = expand_element_sums(safe, [{input: y, target: t} for y, t in zip(ys, ts)])
        _close(safe.xreplace(at), total.xreplace(at), "{} ({}) forward".format(loss.name, reduction))


def check_vector_layer(layer, size=3):
    """The printed VJP is grad^T J and the printed forward is the definition, at one point
    (the symbolic proofs at sizes 1..6 are in tests/test_vector_layers.py)."""
    jacobian, z = layer.jacobian(size)
    point = dict(zip(z, (sp.Rational(-5, 4), sp.Rational(1, 2), sp.Integer(2))[:size]))
    g = (sp.Rational(3, 10), sp.Rational(-17, 10), sp.Rational(9, 10))[:size]
    expected = sp.Matrix([g]) * jacobian.xreplace(point)
    r = [layer.component(list(z), i).xreplace(point) for i in range(size)]
    got = layer.at_components(layer.vjp, [point[zi] for zi in z], g, r)
    for j in range(size):
        _close(got[j], expected[j], "{} VJP, column {}".format(layer.name, j))
    printed = layer.stable_forward.xreplace(dict(layer.definitions))
    got = layer.at_components(printed, [point[zi] for zi in z], [0] * size, [0] * size)
    for j in range(size):
        _close(got[j], r[j], "{} stable forward, component {}".format(layer.name, j))


def run_all():
    for a in activations.ACTIVATIONS:
        check_activation(a)
    for layer in vector_layers.VECTOR_LAYERS:
        check_vector_layer(layer)
    check_linear()
    for loss in losses.LOSSES:
        check_loss(loss)
