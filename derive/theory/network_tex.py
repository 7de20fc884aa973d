"""1.1 to 1.3 in LaTeX: the statements of derive.theory.network, printed, and what changes.

Every answer of 1.2(b), (c), (d) is a list of keyed statements (a forward-table row, the loss,
one gradient, one derivative). 1.3(a) and 1.3(b) ask what changes: a statement is shown
there only when its LaTeX differs from the one shown last under the same key; every other
one is referred to where it was shown. So the answer to "what changes" is exactly the set of
statements that differ, computed, never chosen by hand.
"""
import sympy as sp

from derive import activations, linear
from derive.latex_printer import latex, shape
from derive.theory import network as net

LAYER_TEX = {"Linear_1": r"\mathrm{Linear}_1", "Linear_2": r"\mathrm{Linear}_2", "f": "f", "g": "g"}
OUTPUT_NAME = {"Linear_1": net.z1, "f": net.z2, "Linear_2": net.z3, "g": net.yhat}
PARTS = ("b", "c", "d")


def _math(text):
    return "$" + text + "$"


# -- 1.1 ---------------------------------------------------------------------------------------
def notation_context():
    rows = [{"name": latex(OUTPUT_NAME[name]), "shape": shape(out)}
            for name, _, out in net.forward(net.CASES[0])]
    linear_maps = {"z": latex(linear.z), "x": latex(linear.x), "W": latex(linear.W)}
    return {
        "dims": {k: shape(v) for k, v in {"x": net.x, "W1": net.W1, "b1": net.b1, "W2": net.W2,
                                          "b2": net.b2}.items()},
        "rows": rows,
        "composition": latex(net.composition()),
        "linear": linear_maps,
    }


def training_objective_context():
    """1.5(e): the loss of sample i with the net's output F_theta(x_i) in place of yhat."""
    case = net.CASES[0]
    output, y_i = sp.MatrixSymbol("F_theta_x_i", net.K, 1), sp.MatrixSymbol("y_i", net.K, 1)
    return {"loss_name": case.loss_obj.latex, "output": latex(output),
            "loss": _loss_statement(case, output, y_i)["value"]}


def training_steps_context():
    """1.2(a): one sample i of a batch, through the net and the regression loss."""
    case = net.CASES[0]
    x_i, y_i = sp.MatrixSymbol("x_i", net.n, 1), sp.MatrixSymbol("y_i", net.K, 1)
    yhat_i = sp.MatrixSymbol("yhat_i", net.K, 1)
    return {"composition": latex(net.composition(x_i)), "loss_name": case.loss_obj.latex,
            "loss": _loss_statement(case, yhat_i, y_i)["value"]}


# -- the statements of one case ------------------------------------------------------------------
def _loss_statement(case, yhat_value, target=net.y):
    """The loss of one sample in x, y, W, b: a squared norm for a squared-error sum; else the
    sum over j of the term at yhat_j (then ``entrywise``: yhat_j is named, not spelled out)."""
    loss = case.loss_obj
    scale = loss.scale(case.reduction, net.K)
    if net.is_squared_error(loss):
        value = r"\left\| " + latex(sp.MatAdd(yhat_value, -target)) + r" \right\|^2"
        if scale != 1:
            value = latex(scale) + " " + value
        return {"value": value, "entrywise": False}
    term = latex(loss.term.subs({net.input: net.yhat_j, net.target: net.y_j}))
    return {"value": latex(scale) + r" \sum_{j=1}^{K} \left(" + term + r"\right)", "entrywise": True}


def statements(case):
    """{part: [statement]} of 1.2(b), (c), (d) for this case; each statement has a ``key``
    and its LaTeX in ``text`` (what is compared)."""
    f, g = activations.BY_NAME[case.f], activations.BY_NAME[case.g]
    rows = []
    for name, inp, out in net.forward(case):
        row = {"key": name, "layer": LAYER_TEX[name], "input": latex(inp), "output": latex(out),
               "name": latex(OUTPUT_NAME[name]), "shape": shape(out)}
        row["text"] = row["input"] + "|" + row["output"]
        rows.append(row)
    loss = dict(_loss_statement(case, net.forward(case)[-1][2]), key="loss", name=case.loss_obj.latex)
    loss["text"] = loss["value"]

    grads = []
    for p, v in net.backward(case).items():
        # The one structural fact the text states: numerator layout transposes the shape.
        assert v.shape == p.shape[::-1], (p, v.shape)
        grads.append({"key": p.name, "param": latex(p), "value": latex(v), "shape": shape(v),
                      "param_shape": shape(p), "text": latex(v)})

    el = net.elements(case)
    derivatives = []
    for key, role, a, arg, at in (("dz2_dz1", "f", case.f, net.z1, net.z1_i),
                                  ("dyhat_dz3", "g", case.g, net.z3, net.z3_i)):
        symbol = {"dz2_dz1": net.dz2_dz1, "dyhat_dz3": net.dyhat_dz3}[key]
        matrix = net.jacobian(role, a, arg)
        derivatives.append({"key": key + ".matrix", "lhs": latex(symbol), "rel": "=",
                            "rhs": latex(matrix) + r" \in " + shape(symbol)})
        if not isinstance(matrix, (sp.Identity, sp.MatMul)):  # else the element is in it
            kinks = [{"role": role, "where": latex(at), "at": latex(p), "value": latex(v)}
                     for p, v in net.kinks(activations.BY_NAME[a])]
            derivatives.append({"key": key + ".element", "lhs": "{}'({})".format(role, latex(at)), "rel": "=",
                                "rhs": " = ".join(latex(form) for form in el[key]), "kinks": kinks})
    matrix = net.dl_dyhat_matrix(case)
    derivatives.append({"key": "dl_dyhat.matrix", "lhs": latex(net.dl_dyhat),
                        "rel": "=" if matrix is not None else r"\in",
                        "rhs": (latex(matrix) + r" \in " if matrix is not None else "") + shape(net.dl_dyhat)})
    derivatives.append({"key": "dl_dyhat.element", "lhs": r"\frac{\partial \ell}{\partial \hat{y}_j}", "rel": "=",
                        "rhs": latex(el["dl_dyhat"])})
    if case.dl_dz3_remark:
        derivatives.append({"key": "dl_dz3.element", "lhs": r"\frac{\partial \ell}{\partial z_{3,j}}", "rel": "=",
                            "rhs": r"\frac{\partial \ell}{\partial \hat{y}_j}\, g'(z_{3,j}) = "
                                   + latex(el["dl_dz3"]), "remark": case.dl_dz3_remark})
    for d in derivatives:
        d["text"] = d["lhs"] + d["rel"] + d["rhs"]
        d.setdefault("remark", "")
        d.setdefault("kinks", [])
    return {"b": rows + [loss], "c": grads, "d": derivatives, "f": f, "g": g}


def _answer(case, part):
    """Where a part of this case is answered: 1.2(b) for the regression, 1.3(a) for its changes."""
    return case.question + "(" + part + ")" if "(" not in case.question else case.question


def _as_in(items):
    """'$z_1$ as in 1.2(b); $z_2$, $z_3$ as in 1.3(a)': each group of statements with the
    answer where it was shown."""
    groups = {}
    for name, where in items:
        groups.setdefault(where, []).append(name)
    return "; ".join(", ".join(names) + " as in " + where for where, names in groups.items())


def contexts():
    """{case key: template context}, the cases in the order the theory answers them; each
    statement that is unchanged since it was last shown is a reference instead."""
    shown, previous, out = {}, None, {}
    for case in net.CASES:
        parts = statements(case)
        ctx = {"case": case.key, "question": case.question, "f": parts["f"].latex, "g": parts["g"].latex,
               "loss": case.loss_obj.latex}
        for part in PARTS:
            new, same = [], []
            for s_ in parts[part]:
                before = shown.get(s_["key"])
                if before is not None and before["text"] == s_["text"]:
                    same.append(dict(s_, where=before["where"], label=before["label"]))
                else:
                    label = "eq:{}-{}".format(case.key, s_["key"].replace("_", "").replace(".", "-"))
                    new.append(dict(s_, where=_answer(case, part), label=label))
            for s_ in new:
                shown[s_["key"]] = s_
            ctx[part] = {"new": new, "same": same, "all": [shown[s_["key"]] for s_ in parts[part]]}
        ctx["b"]["same_rows"] = _as_in((_math(s_["name"]), s_["where"]) for s_ in ctx["b"]["same"]
                                       if s_["key"] != "loss")
        ctx["b"]["new_rows"] = [s_ for s_ in ctx["b"]["new"] if s_["key"] != "loss"]
        ctx["b"]["new_loss"] = next((s_ for s_ in ctx["b"]["new"] if s_["key"] == "loss"), None)
        ctx["b"]["yhat_where"] = shown["g"]["where"]
        ctx["d"]["same_text"] = _as_in((_math(s_["lhs"]), s_["where"]) for s_ in ctx["d"]["same"]
                                       if s_["key"].endswith(".matrix"))
        ctx["changes"] = {"activations": [r for r in (("f", case.f), ("g", case.g))
                                          if previous is None or getattr(previous, r[0]) != r[1]],
                          "loss": previous is None or (previous.loss, previous.reduction) != (case.loss, case.reduction),
                          "base": previous.question if previous else None}
        ctx["changes"]["activations"] = [_math("{} = {}".format(role, activations.BY_NAME[a].latex))
                                         for role, a in ctx["changes"]["activations"]]
        out[case.key] = ctx
        previous = case
    return out


def chain_context():
    """The chain rule of 1.2(c): derive.linear's one-sample VJPs, and what each layer receives."""
    vjp = linear.per_sample()["vjp"]
    return {
        "layer": latex(sp.MatrixSymbol("z", linear.m, 1)) + " = " + latex(linear.z),
        "delta": latex(linear.delta),
        "vjp": [{"wrt": latex(v), "value": latex(vjp[v.name])} for v in (linear.x, linear.W, linear.b)],
        "chain": [{"lhs": latex(k), "rhs": latex(v)} for k, v in net.chain().items()],
    }


def saturation_context():
    """1.3(c): the largest slopes of sigma and tanh, and ReLU's derivative."""
    sig, th, relu = (activations.BY_NAME[k] for k in ("sigmoid", "tanh", "relu"))
    at0 = lambda a: a.raw_derivative.subs(net.input, 0)
    return {"sigmoid_max": latex(at0(sig)), "tanh_max": latex(at0(th)),
            "relu_prime": latex(net.readable.derivative(relu).subs(net.input, sp.Symbol("x", real=True)))}
