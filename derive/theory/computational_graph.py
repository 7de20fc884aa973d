"""1.5(b): the computational graph of a = x*y + z, b = (x + x)*a, w = a*b, from SymPy's
expression DAG, for TikZ.

One convention throughout: every value is a variable node (a circle) and every operation an
operator node (a square), so edges always run value -> operator -> value. The intermediate
values the question leaves unnamed (x*y, x + x) get names of their own (TEMPORARIES)."""
import sympy as sp

gx, gy, gz = sp.symbols("x y z", real=True)
TEMPORARIES = ("u", "v", "p", "q")


def graph_expressions():
    """a = x*y + z, b = (x + x)*a, w = a*b, built unevaluated so that x + x stays a sum."""
    a = sp.Add(sp.Mul(gx, gy, evaluate=False), gz, evaluate=False)
    b = sp.Mul(sp.Add(gx, gx, evaluate=False), a, evaluate=False)
    w = sp.Mul(a, b, evaluate=False)
    return {"a": a, "b": b, "w": w}


def names():
    """{sub-expression: name} for every operation's result: the question's a, b, w, and a
    temporary for each unnamed one, in the order of evaluation."""
    named = {v: k for k, v in graph_expressions().items()}
    order, temporaries = [], iter(TEMPORARIES)

    def visit(e):
        if e.is_Symbol or e in order:
            return
        for c in e.args:
            visit(c)
        order.append(e)

    visit(graph_expressions()["w"])
    return {e: named[e] if e in named else next(temporaries) for e in order}


def graph():
    """Nodes (id, kind, label, level) and edges (source, target, count) of the expression
    DAG; every operation is an operator node followed by the variable node of its result."""
    named = names()
    nodes, edges, ids = [], {}, {}

    def visit(e):
        if e in ids:
            return ids[e]
        if e.is_Symbol:
            node = ("v_" + e.name, "variable", e.name, 0)
            nodes.append(node)
            ids[e] = node
            return node
        children = [visit(c) for c in e.args]
        level = 1 + max(c[3] for c in children)
        op = ("op{}".format(len([nd for nd in nodes if nd[1] == "operator"]) + 1), "operator",
              "+" if e.is_Add else "*", level)
        nodes.append(op)
        for c in children:
            edges[(c[0], op[0])] = edges.get((c[0], op[0]), 0) + 1
        out = ("v_" + named[e], "variable", named[e], level + 1)
        nodes.append(out)
        edges[(op[0], out[0])] = 1
        ids[e] = out
        return out

    visit(graph_expressions()["w"])
    return nodes, [(s_, t_, c) for (s_, t_), c in edges.items()]


def graph_context():
    nodes, edges = graph()
    # Layout: level -> column; inside a column, order by the mean row of the predecessors.
    row = {}
    for level in sorted({nd[3] for nd in nodes}):
        column = [nd for nd in nodes if nd[3] == level]
        if level == 0:
            order = sorted(column, key=lambda nd: nd[2])
            wanted = {nd[0]: 1.6 * k for k, nd in enumerate(order)}
        else:
            wanted = {}
            for nd in column:
                preds = [row[s_] for s_, t_, _ in edges if t_ == nd[0]]
                wanted[nd[0]] = sum(preds) / len(preds)
        placed = []
        for name in sorted(wanted, key=lambda k: (wanted[k], k)):
            r = wanted[name]
            if placed and r < placed[-1] + 1.2:
                r = placed[-1] + 1.2
            placed.append(r)
            row[name] = r
    tex_nodes = [{"id": nd[0], "kind": nd[1], "label": nd[2], "x": "{:.2f}".format(1.45 * nd[3]),
                  "y": "{:.2f}".format(-row[nd[0]])} for nd in nodes]
    tex_edges = []
    for s_, t_, count in edges:
        bends = [""] if count == 1 else ["bend left=20", "bend right=20"]
        tex_edges.extend({"source": s_, "target": t_, "style": b} for b in bends)
    named = names()

    def spell(e):
        parts = [c.name if c.is_Symbol else named[c] for c in e.args]
        return (" + " if e.is_Add else r" * ").join(parts)

    given = {k: spell(v) for k, v in graph_expressions().items()}
    steps = [{"name": nm, "value": spell(e)} for e, nm in named.items()]
    return {"nodes": tex_nodes, "edges": tex_edges, "steps": steps,
            "temporaries": [st["name"] for st in steps if st["name"] not in given]}
