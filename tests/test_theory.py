"""theory.pdf's answers (derive/theory/) against SymPy's component-wise derivatives, the
generated torch code and a real LaTeX build.

Each matrix-form answer is instantiated at small sizes with one symbol per component and
compared with the derivative SymPy takes entry by entry, arranged in numerator layout: the
derivative of a scalar by an r x c matrix is c x r, so a missing transpose fails on shape or
on value.
"""
import dataclasses
import os
import pathlib
import random
import re
import shutil
import subprocess

import pytest
import sympy as sp
import torch

from derive import activations, render
from derive.theory import (computational_graph, concepts, derivative_plots, network, network_tex, readable,
                           title_page, update_rules)
from derive.latex_printer import latex
from derive.symbols import input, target
from generated import layers

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated" / "theory"
SIZES = {network.n: 3, network.m: 4, network.K: 2}  # all different, so shapes tell a transpose
TOL = 1e-20


def _components(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol("{}_{}{}".format(name, i, j), real=True))


def _point(case, symbols, seed):
    """Values for the components, as 30-digit floats so that tanh and sigmoid evaluate as
    they go (exact rationals make the nested expressions grow)."""
    rng = random.Random(seed)
    while True:
        at = {s: sp.Float(sp.Rational(rng.randint(-30, 30), 10), 30) for s in symbols}
        for s in symbols:
            if s.name.startswith("y_") and case.loss == "bce_loss":
                at[s] = sp.Float(sp.Rational(rng.randint(0, 10), 10), 30)
        yield at


class Net:
    """The 2-layer net of 1.1 written out entry by entry. Components in ``symbolic`` stay
    symbols (those a derivative is taken by); all others take their values from ``at``."""

    def __init__(self, case, at=None, symbolic=()):
        n, m, K = (SIZES[s] for s in (network.n, network.m, network.K))
        self.case = case
        self.f, self.g = activations.BY_NAME[case.f], activations.BY_NAME[case.g]
        self.components = {
            network.x: _components("x", n, 1), network.y: _components("y", K, 1),
            network.W1: _components("Wa", m, n), network.b1: _components("ba", m, 1),
            network.W2: _components("Wb", K, m), network.b2: _components("bb", K, 1),
        }
        e = {k: (M if at is None or k in symbolic else M.subs(at)) for k, M in self.components.items()}
        self.explicit = e
        self.z1 = e[network.W1] * e[network.x] + e[network.b1]
        self.z2 = self.z1.applyfunc(lambda v: self.f.forward.subs(input, v))
        self.z3 = e[network.W2] * self.z2 + e[network.b2]
        self.yhat = self.z3.applyfunc(lambda v: self.g.forward.subs(input, v))
        self.loss = self.loss_of(self.yhat)

    @property
    def symbols(self):
        return sorted(set().union(*(M.free_symbols for M in self.components.values())), key=str)

    def loss_of(self, yhat):
        loss = self.case.loss_obj
        scale = loss.scale(self.case.reduction, SIZES[network.K])
        return scale * sum(loss.term.subs({input: a, target: t}) for a, t in zip(yhat, self.explicit[network.y]))

    def numerator_layout(self, parameter):
        """d loss / d parameter, component-wise, arranged c x r for an r x c parameter."""
        P = self.explicit[parameter]
        return sp.Matrix(P.cols, P.rows, lambda j, i: sp.diff(self.loss, P[i, j]))

    def jacobians(self):
        """The three derivatives 1.2(c) may use, each taken component-wise and evaluated at
        the net's values: a row per output."""
        K, m = SIZES[network.K], SIZES[network.m]
        u = sp.Matrix(sp.symbols("u_0:{}".format(m), real=True))
        v = sp.Matrix(sp.symbols("v_0:{}".format(K), real=True))
        dz2_dz1 = u.applyfunc(lambda t: self.f.forward.subs(input, t)).jacobian(u).subs(dict(zip(u, self.z1)))
        dyhat_dz3 = v.applyfunc(lambda t: self.g.forward.subs(input, t)).jacobian(v).subs(dict(zip(v, self.z3)))
        dl_dyhat = sp.Matrix([self.loss_of(v)]).jacobian(v).subs(dict(zip(v, self.yhat)))
        return {network.dz2_dz1: dz2_dz1, network.dyhat_dz3: dyhat_dz3, network.dl_dyhat: dl_dyhat}


def _instantiate(expr, values):
    sized = expr.subs(SIZES)
    values = {k.subs(SIZES): v for k, v in values.items()}
    assert set(sized.free_symbols) <= set(values), "variables the answer may not use"
    return sp.Matrix(sized.xreplace(values).doit())


def _assert_close(got, expected, at, what):
    assert got.shape == expected.shape, "{}: shape {} != {}".format(what, got.shape, expected.shape)
    for a, b in zip(got, expected):
        a, b = sp.N(a.subs(at), 40), sp.N(b.subs(at), 40)
        assert abs(a - b) <= TOL * max(1, abs(b)), "{}: {} != {}".format(what, a, b)


@pytest.mark.parametrize("case", network.CASES, ids=lambda c: c.key)
def test_backward_answers_equal_componentwise_gradients(case):
    points = _point(case, Net(case).symbols, seed=len(case.key))
    for _ in range(2):
        at = next(points)
        if case.f == "scaled_relu":  # the kink is not a point to test at; want both branches
            while {bool(v.subs(at) > 0) for v in Net(case).z1} != {True, False} \
                    or any(v.subs(at) == 0 for v in Net(case).z1):
                at = next(points)
        net = Net(case, at)  # every component a number
        values = dict(net.explicit)
        values.update(net.jacobians())
        for parameter, answer in network.backward(case).items():
            expected = Net(case, at, symbolic=(parameter,)).numerator_layout(parameter)
            _assert_close(_instantiate(answer, values), expected, at, "{} dl/d{}".format(case.key, parameter))


def test_a_missing_transpose_is_caught():
    case = network.CASE["regression"]
    net = Net(case)
    values = dict(net.explicit)
    values.update(net.jacobians())
    wrong = sp.Transpose(network.backward(case)[network.W1])
    with pytest.raises(AssertionError):
        _assert_close(_instantiate(wrong, values), net.numerator_layout(network.W1), {}, "transposed")


@pytest.mark.parametrize("case", network.CASES, ids=lambda c: c.key)
def test_element_answers_equal_componentwise_jacobians(case):
    net = Net(case)
    K, m = SIZES[network.K], SIZES[network.m]
    elements = network.elements(case)
    u = sp.Matrix(sp.symbols("u_0:{}".format(m), real=True))
    v = sp.Matrix(sp.symbols("v_0:{}".format(K), real=True))
    t = sp.Matrix(sp.symbols("t_0:{}".format(K), real=True))

    def diagonal(element, act, points, out_symbol, in_symbol):
        def entry(i, j):
            if i != j:
                return 0
            at = {in_symbol: points[i], out_symbol: act.forward.subs(input, points[i])}
            return element.subs(at)
        return sp.Matrix(len(points), len(points), entry)

    at = {s: sp.Rational(k + 3, 7) * (-1) ** k for k, s in enumerate(list(u) + list(v))}
    at.update({s: sp.Rational(k + 1, 5) for k, s in enumerate(t)})
    for key, act, z, sym_in, sym_out in (("dz2_dz1", net.f, u, network.z1_i, network.z2_i),
                                         ("dyhat_dz3", net.g, v, network.z3_i, network.yhat_i)):
        expected = z.applyfunc(lambda q: act.forward.subs(input, q)).jacobian(z)
        assert elements[key], key
        for k, form in enumerate(elements[key]):  # every spelling the theory shows
            _assert_close(diagonal(readable.elementary(form), act, z, sym_out, sym_in), expected, at,
                          "{} {} (form {})".format(case.key, key, k))
    # dl/dyhat: a 1 x K row at free yhat = v and y = t.
    loss = case.loss_obj
    scale = loss.scale(case.reduction, K)
    ell = scale * sum(loss.term.subs({input: a, target: b}) for a, b in zip(v, t))
    expected = sp.Matrix([ell]).jacobian(v)
    at.update({s: sp.Rational(k + 2, 9) for k, s in enumerate(v)})  # inside (0, 1) for BCE
    row = sp.Matrix(1, K, lambda _, j: elements["dl_dyhat"].subs({network.yhat_j: v[j], network.y_j: t[j],
                                                                   network.K: K}))
    _assert_close(row, expected, at, "{} dl/dyhat".format(case.key))
    # The shown entry is the code's derivative without its clamp: SymPy's raw one, exactly.
    raw = case.loss_obj.scale(case.reduction, network.K) * case.loss_obj.raw_derivative
    assert sp.simplify(elements["dl_dyhat"] - raw.subs({input: network.yhat_j, target: network.y_j})) == 0
    matrix = network.dl_dyhat_matrix(case)
    if matrix is not None:
        _assert_close(_instantiate(matrix, {network.yhat: v, network.y: t}), expected, at,
                      "{} dl/dyhat matrix".format(case.key))


@pytest.mark.parametrize("case", network.CASES, ids=lambda c: c.key)
def test_forward_answers_equal_the_net(case):
    net = Net(case)
    outputs = [net.z1, net.z2, net.z3, net.yhat]
    at = next(_point(case, net.symbols, seed=7))
    for (name, _, expr), expected in zip(network.forward(case), outputs):
        _assert_close(_instantiate(expr, net.explicit), expected, at, "{} {}".format(case.key, name))


def test_sigmoid_bce_product_cancels():
    yj, tj = network.yhat_j, network.y_j
    assert sp.simplify(network.elements(network.CASE["classification_bce"])["dl_dz3"] - (yj - tj) / network.K) == 0


# -- 1.4 -----------------------------------------------------------------------------------
D = 3
ws, xs = sp.symbols("w_1:{}".format(D + 1), real=True), sp.symbols("x_1:{}".format(D + 1), real=True)
S = update_rules.bias + sum(w * xv for w, xv in zip(ws, xs))


@pytest.mark.parametrize("alg", update_rules.ALGORITHMS, ids=lambda a: a.key)
def test_loss_differentiates_back_to_the_update_rule(alg):
    d = update_rules.loss_derivation(alg)
    L = d["loss"].subs(update_rules.s, S)
    yhat = alg.inference.subs(update_rules.s, S)
    eta, y = update_rules.eta, update_rules.yy
    for w, xv in list(zip(ws, xs)) + [(update_rules.bias, 1)]:
        step = -eta * sp.diff(L, w)
        rule = eta * (y - yhat) * xv
        difference = sp.simplify((step - rule).rewrite(sp.exp))
        assert difference == 0, (alg.key, w, difference)


@pytest.mark.parametrize("alg", update_rules.ALGORITHMS, ids=lambda a: a.key)
def test_loss_is_sympys_integral_and_the_closed_form(alg):
    d = update_rules.loss_derivation(alg)
    s, y = update_rules.s, update_rules.yy
    integral = sp.integrate(d["dL_ds"], s)
    for label in update_rules.LABELS:
        for sv in (-2.5, -0.3, 0.4, 1.7):
            at = {s: sv, y: label}
            # the stated integral differs from SymPy's by nothing (same constant)
            assert abs(sp.N((integral - d["integral"]).subs(at))) < 1e-12, (alg.key, at)
            assert abs(sp.N((d["loss"] - alg.closed_form).subs(at))) < 1e-12, (alg.key, at)
            assert sp.N(d["loss"].subs(at)) >= -1e-12  # never negative


# -- 1.5 -----------------------------------------------------------------------------------
def test_softmax_tends_to_one_hot_argmax():
    a, b = sp.symbols("a b", real=True)
    T = concepts.T
    two = sp.exp(2 / T) / (sp.exp(2 / T) + sp.exp(1 / T))
    assert sp.limit(two, T, 0, "+") == 1
    assert "T" in concepts.softmax_context()["softmax"]


def test_graph_keeps_x_plus_x_and_shares_a():
    nodes, edges = computational_graph.graph()
    kinds = {}
    for _, kind, label, _ in nodes:
        kinds.setdefault(kind, []).append(label)
    # One convention: every operation's result is a variable node, named or not.
    assert sorted(kinds["variable"]) == ["a", "b", "u", "v", "w", "x", "y", "z"]
    assert sorted(kinds["operator"]) == ["*", "*", "*", "+", "+"]
    kind = {nd[0]: nd[1] for nd in nodes}
    assert all(kind[s_] != kind[t_] for s_, t_, _ in edges), "an edge joins two operators or two values"
    plus_of_x = [(s_, t_, c) for s_, t_, c in edges if s_ == "v_x" and c == 2]
    assert len(plus_of_x) == 1  # x + x: one + node fed twice by x, not 2*x
    assert sum(1 for s_, _, _ in edges if s_ == "v_a") == 2  # a feeds b's * and w's *
    tex = (GENERATED / "q1_5_b.tex").read_text()
    assert tex.count("variablenode]") == 8 and tex.count("operatornode]") == 5


def _plotted_points():
    """{activation: [(x, y)]} of the curves and kink values printed in q1_5_c.tex."""
    text = (GENERATED / "q1_5_c.tex").read_text()
    sections = text.split(r"\nextgroupplot")[1:]
    assert len(sections) == len(derivative_plots.PLOTTED)
    points = {}
    for name, section in zip(derivative_plots.PLOTTED, sections):
        found = {"derivative": [], "kink value": [], "limit": []}
        for coords, kind in re.findall(r"coordinates \{(.*?)\}; % (derivative|kink value|limit)", section):
            found[kind] += [tuple(map(float, p.split(","))) for p in re.findall(r"\(([^)]*)\)", coords)]
        # A curve's end at a jump is a one-sided limit; the value there is the kink dot.
        kinks = {p[0] for p in found["kink value"]}
        points[name] = [p for p in found["derivative"] if p[0] not in kinks] + found["kink value"]
    return points


def test_plotted_derivatives_equal_the_generated_torch_code():
    for name, pts in _plotted_points().items():
        assert len(pts) > 50, name
        xs_ = torch.tensor([p[0] for p in pts], dtype=torch.float64)
        ys_ = torch.tensor([p[1] for p in pts], dtype=torch.float64)
        entry = layers.ACTIVATIONS[name]
        result = entry["forward"](xs_)
        got = entry["backward"](torch.ones_like(xs_), input=xs_, result=result)
        assert torch.allclose(got.to(torch.float64), ys_, atol=2e-6, rtol=0), name


def test_kink_values_match_torch():
    pts = _plotted_points()
    assert (0.0, 0.0) in pts["relu"]  # ReLU'(0) = 0, as torch
    assert (0.0, 0.01) in pts["leaky_relu"]  # LeakyReLU'(0) = negative_slope
    x0 = torch.zeros(1, requires_grad=True)
    torch.nn.functional.relu(x0).backward()
    assert x0.grad.item() == 0.0


# -- the printer ---------------------------------------------------------------------------
def test_printer_spellings():
    assert latex(sp.Transpose(network.W1)) == r"\left(\boldsymbol{W}^{(1)}\right)^{\top}"
    assert r"^{\top}" in latex(sp.Transpose(network.x))
    assert latex(sp.Max(0, sp.Symbol("q"))) == r"\left(q\right)^{+}"
    assert latex(network.dl_dyhat) == r"\frac{\partial \ell}{\partial \hat{\boldsymbol{y}}}"
    assert "5" in latex(network.forward(network.CASE["regression"])[1][2])


def test_every_answer_states_its_dimensions():
    text = (GENERATED / "q1_2_c.tex").read_text()
    for shape in (r"\mathbb{R}^{n \times m}", r"\mathbb{R}^{1 \times m}", r"\mathbb{R}^{m \times K}",
                  r"\mathbb{R}^{1 \times K}"):
        assert shape in text, shape
    for key in ("q1_2_c", "q1_3_a", "q1_3_b"):  # every gradient shown, with its shape
        text = (GENERATED / (key + ".tex")).read_text()
        rows = re.findall(r"^\\frac\{\\partial \\ell\}\{\\partial \\boldsymbol\{[Wb]\}.*$", text, re.M)
        assert all(r"&& \in \mathbb{R}^{" in row for row in rows), key
    text = (GENERATED / "q1_2_d.tex").read_text()
    for shape in (r"\mathbb{R}^{m \times m}", r"\mathbb{R}^{K \times K}", r"\mathbb{R}^{1 \times K}"):
        assert shape in text


# -- 1.3 states changes only -----------------------------------------------------------------
DOCUMENT = re.findall(r"\\fragment\{(\w+)\}", (ROOT / "theory" / "theory.tex").read_text())
_ENV = r"(?:equation|align\*?|gather\*?)"


def _equations(tex):
    """The display equations of a fragment, normalised: each line of an equation, align or
    gather, of a \\[ \\] display, and each row of a forward table; labels, alignment marks,
    spacing and end punctuation dropped; lines without '=' (table heads) left out."""
    bodies = re.findall(r"\\begin\{" + _ENV + r"\}(.*?)\\end\{" + _ENV + r"\}", tex, re.S)
    bodies += re.findall(r"\\\[(.*?)\\\]", tex, re.S)
    bodies += re.findall(r"\\begin\{array\}\{\w*\}(.*?)\\end\{array\}", tex, re.S)
    out = set()
    for body in bodies:
        for line in re.split(r"\\\\(?:\[[^]]*\])?", body):
            line = re.sub(r"\\label\{[^}]*\}|\\hline|&", " ", line)
            line = " ".join(line.split()).rstrip(".,; ")
            if "=" in line:
                out.add(line)
    return out


def test_1_3_repeats_no_equation_of_an_earlier_answer():
    assert DOCUMENT.index("q1_3_a") > DOCUMENT.index("q1_2_d")
    earlier = set()
    for key in DOCUMENT:
        equations = _equations((GENERATED / (key + ".tex")).read_text())
        if key in ("q1_3_a", "q1_3_b"):
            assert equations, key
            repeated = equations & earlier
            assert not repeated, (key, sorted(repeated))
        earlier |= equations
    # The check can fail: 1.2(c)'s gradients are found, and a copy of them would be caught.
    gradients = _equations((GENERATED / "q1_2_c.tex").read_text())
    assert len([e for e in gradients if e.startswith(r"\frac{\partial \ell}")]) == 4
    assert gradients & earlier == gradients


def test_1_3_shows_each_change_and_refers_back_for_the_rest():
    a = (GENERATED / "q1_3_a.tex").read_text()
    b = (GENERATED / "q1_3_b.tex").read_text()
    # 1.3(a): f and g change, so z2, z3, yhat, the loss, dl/dW2 and both activations' derivatives;
    # 1.3(b): only the loss and dl/dyhat.
    assert r"\tanh" in a and r"\sigma" in a and "as in 1.2(b)" in a and "as in 1.2(d)" in a
    assert a.count(r"\label{") == 2  # the loss and dl/dW2
    assert b.count(r"\label{") == 1 and "No formula changes" in b  # the loss only
    assert r"\frac{\hat{y}_j - y_j}{K \hat{y}_j \left(1 - \hat{y}_j\right)}" in b
    for text in (a, b):  # the four gradients, each by reference
        assert len(re.findall(r"\\eqref\{", text)) == 4


@pytest.mark.parametrize("f, g", [("gelu", "softplus"), ("leaky_relu", "relu")])
def test_changes_are_computed_for_any_setting(monkeypatch, f, g):
    """A setting the theory does not answer: what changes is still exactly what differs."""
    base = network.CASES[0]
    monkeypatch.setattr(network, "CASES", (base, network.Case("other", "1.3(x)", f, g, "bce_loss", "mean")))
    ctx = network_tex.contexts()["other"]
    text = render._environment().get_template("theory/changes.tex.j2").render(header="%", **ctx)
    earlier = set().union(*(_equations((GENERATED / (k + ".tex")).read_text()) for k in DOCUMENT[:DOCUMENT.index("q1_3_a")]))
    assert _equations(text) and not _equations(text) & earlier
    assert ctx["changes"]["loss"] and len(ctx["changes"]["activations"]) == 2
    new = {st["key"] for st in ctx["d"]["new"]}
    assert {"dz2_dz1.element", "dyhat_dz3.matrix", "dl_dyhat.element"} <= new
    kinks = [k["role"] for st in ctx["d"]["new"] for k in st["kinks"]]
    assert kinks == [r for r, a in (("f", f), ("g", g)) if network.kinks(activations.BY_NAME[a])]


def test_notation_is_defined_once():
    texts = {key: (GENERATED / (key + ".tex")).read_text() for key in DOCUMENT}
    assert sum(t.count(r"$\delta_{ij}$ is $1$ if $i = j$") for t in texts.values()) == 1
    assert r"$\delta_{ij}$ is $1$ if $i = j$" in texts["q1_1"]


# -- 1.5(c): formulas a reader knows -----------------------------------------------------------
@pytest.mark.parametrize("name, shown", [("softplus", r"\sigma\left(x\right)"),
                                         ("gelu", r"\Phi\left(x\right) + x \varphi\left(x\right)")])
def test_readable_derivative_is_the_one_the_code_uses(name, shown):
    a = activations.BY_NAME[name]
    assert "{}'(x) &= {}".format(a.latex, shown) in (GENERATED / "q1_5_c.tex").read_text()
    d = readable.elementary(readable.derivative(a))
    # Exactly SymPy's derivative and the code's, wherever the code takes no shortcut ...
    for code_form in (a.raw_derivative, a.safe_derivative):
        assert sp.simplify(d - readable.without_cutoffs(sp.piecewise_fold(code_form))) == 0, code_form
    # ... and to float32 rounding everywhere, Softplus above its threshold 20 included.
    for p in (-60, -8, -0.5, 0, 0.7, 5, 19.9, 20, 20.1, 25, 60, 1000):
        got, want = sp.N(d.subs(input, p), 30), sp.N(a.safe_derivative.subs(input, p), 30)
        assert abs(got - want) <= readable.FLOAT32_EPS * abs(want), (p, got, want)


def test_named_functions_are_their_definitions():
    xx = sp.Symbol("x", real=True)
    for fn in readable.NAMED:
        shown = readable.elementary(fn.display(xx)).doit()
        assert sp.simplify((shown - fn.definition(xx)).rewrite(sp.erf)) == 0, fn
        assert sp.simplify(readable.elementary(sp.diff(fn(xx), xx)) - sp.diff(fn.definition(xx), xx)) == 0, fn
        assert sp.simplify(readable.elementary(fn(-xx)) - fn.definition(-xx)) == 0, fn


def test_cutoffs_are_only_float_shortcuts():
    xx = input
    assert readable.cutoffs(activations.BY_NAME["softplus"].forward)  # x for x > 20
    assert readable.without_cutoffs(activations.BY_NAME["leaky_relu"].safe_derivative) \
        == activations.BY_NAME["leaky_relu"].safe_derivative  # a kink is mathematics
    coarse = sp.Piecewise((1, xx > 3), (1 / (1 + sp.exp(-xx)), True))  # sigma(3) = 0.95: not a rounding
    assert readable.cutoffs(coarse) == []
    assert network.kinks(activations.BY_NAME["scaled_relu"]) == [(0, 0)]


def test_a_wrong_integral_form_is_refused():
    alg = dataclasses.replace(update_rules.ALGORITHMS[-1], integral_form=sp.log(sp.cosh(update_rules.s)))
    with pytest.raises(ValueError, match="not SymPy's integral"):
        update_rules.loss_derivation(alg)


# -- the title page ------------------------------------------------------------------------------
def test_title_line_escapes_and_refuses_what_pdflatex_cannot_set():
    assert title_page.student_line("", "") == ""
    assert title_page.student_line("Ada  Lovelace", "ab1234") == r"Ada Lovelace \quad Net ID: \texttt{ab1234}"
    assert title_page.student_line("O'Brien & Sons_1 100%", "") == r"O'Brien \& Sons\_1 100\%"
    assert title_page.student_line("Zoë Łukasik", "") == "Zoë Łukasik"
    with pytest.raises(ValueError, match="NAME"):
        title_page.student_line("王小明", "")


# -- the PDF -------------------------------------------------------------------------------
LABELS = ["1.1", "1.2(a)", "1.2(b)", "1.2(c)", "1.2(d)", "1.3(a)", "1.3(b)", "1.3(c)",
          "1.4.1", "1.4.2", "1.4.3", "1.5(a)", "1.5(b)", "1.5(c)", "1.5(d)", "1.5(e)"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_passes_name_and_netid_to_the_title_page():
    """`make NAME=... NETID=...` reaches the title page's environment; a NAME that only the
    environment sets (WSL sets it to the host name) does not."""
    probe = 'show-title:\n\t@echo "$$TITLE_NAME|$$TITLE_NETID"\n'

    def title_env(args, env):
        # Not the MAKEFLAGS of a `make test` around us: they may carry its own NAME or NETID.
        clean = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "NAME",
                                                                  "NETID", "TITLE_NAME", "TITLE_NETID")}
        return subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-", "show-title"] + args,
                              input=probe, cwd=ROOT, capture_output=True, text=True, check=True,
                              env=dict(clean, **env)).stdout.strip()

    assert title_env(["NAME=Conan O'Brien", "NETID=ab1234"], {}) == "Conan O'Brien|ab1234"
    assert title_env([], {"NAME": "my-laptop"}) == "|"
    recipe = re.search(r"^theory:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S).group(0)
    assert "derive.theory.title_page" in recipe and "TEXINPUTS=build:" in recipe


def _build(tmp_path, name="", netid=""):
    """theory.pdf built into tmp_path, with the title file that `make theory` would write."""
    (tmp_path / "title.tex").write_text(title_page.title_tex(name, netid))
    env = dict(os.environ, TEXINPUTS=str(tmp_path) + os.pathsep)
    build = subprocess.run(
        ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-outdir=" + str(tmp_path), "theory.tex"],
        cwd=ROOT / "theory", capture_output=True, text=True, timeout=180, env=env)
    log = (tmp_path / "theory.log").read_text(errors="replace") if (tmp_path / "theory.log").exists() else ""
    assert build.returncode == 0, build.stdout[-3000:] + log[-3000:]
    return tmp_path / "theory.pdf", log


def _text(pdf, *pages):
    first_last = ["-f", str(pages[0]), "-l", str(pages[-1])] if pages else []
    return subprocess.run(["pdftotext"] + first_last + [str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk is not installed (CI installs TeX)")
def test_pdf_builds_with_every_label_and_no_undefined_reference(tmp_path):
    pdf, log = _build(tmp_path, "Ada Lovelace", "ab1234")
    undefined = [line for line in log.splitlines() if "undefined" in line.lower()]
    assert not undefined, undefined
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed; the PDF built")
    text = _text(pdf)
    missing = [label for label in LABELS if label not in text]
    assert not missing, missing
    # A grader reads mathematics only: no project tooling.
    for word in ("SymPy", "sympy", "generated", ".py"):
        assert word not in text, word
    assert " ".join(text.split()).count("is 1 if i = j") == 1  # delta_ij, defined once
    first = _text(pdf, 1)
    assert "Ada Lovelace" in first and "ab1234" in first and "CSCI-GA 2572" in first


@pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                    reason="latexmk or pdftotext is not installed (CI installs TeX)")
def test_title_page_without_a_student_shows_the_course_header(tmp_path):
    pdf, _ = _build(tmp_path)
    first = _text(pdf, 1)
    assert "CSCI-GA 2572 Deep Learning" in first and "Net ID" not in first
