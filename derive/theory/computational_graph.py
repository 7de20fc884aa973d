"""1.5(b): the computational graph of a = x*y + z, b = (x + x)*a, w = a*b, from SymPy's
expression DAG, for TikZ."""
import sympy as sp

gx, gy, gz = sp.symbols("x y z", real=True)


def graph_expressions():
    """a = x*y + z, b = (x + x)*a, w = a*b, built unevaluated so that x + x stays a sum."""
    a = sp.Add(sp.Mul(gx, gy, evaluate=False), gz, evaluate=False)
    b = sp.Mul(sp.Add(gx, gx, evaluate=False), a, evaluate=False)
    w = sp.Mul(a, b, evaluate=False)
    return {"a": a, "b": b, "w": w}


def graph():
    """Nodes (id, kind, label, level) and edges (source, target, count) of the expression
    DAG; a named sub-expression is one operator node followed by its variable node."""
    named = {v: k for k, v in graph_expressions().items()}
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
        out = op
        if e in named:
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
    tex_nodes = [{"id": nd[0], "kind": nd[1], "label": nd[2], "x": "{:.2f}".format(1.7 * nd[3]),
                  "y": "{:.2f}".format(-row[nd[0]])} for nd in nodes]
    tex_edges = []
    for s_, t_, count in edges:
        bends = [""] if count == 1 else ["bend left=20", "bend right=20"]
        tex_edges.extend({"source": s_, "target": t_, "style": b} for b in bends)
    named = {v: k for k, v in graph_expressions().items()}

    def spell(e, top=False):
        if e.is_Symbol or (e in named and not top):
            return e.name if e.is_Symbol else named[e]
        parts = [spell(c) for c in e.args]
        if e.is_Mul:
            parts = ["(" + p + ")" if c.is_Add and c not in named else p for c, p in zip(e.args, parts)]
        return (" + " if e.is_Add else r" * ").join(parts)

    eqs = [{"name": k, "value": spell(v, top=True)} for k, v in graph_expressions().items()]
    return {"nodes": tex_nodes, "edges": tex_edges, "equations": eqs}
