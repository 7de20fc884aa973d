"""The theory answers of theory.pdf, built from the same objects that generate the code.

One module per group of questions; ``outputs()`` (called by ``derive.render``) lists every
fragment of generated/theory/ with its template and context.
"""
from derive.latex_printer import latex, shape
from derive.theory import computational_graph, concepts, derivative_plots, network, update_rules
from derive.theory.network import CASE, W1, W2, b1, b2, x, yhat_j


def outputs():
    out = [("theory/notation.tex.j2", "theory/q1_1.tex", {
        "forward": network.forward_context(CASE["regression"]),
        "dims": {k: shape(v) for k, v in {"x": x, "W1": W1, "b1": b1, "W2": W2, "b2": b2}.items()},
    })]
    regression = network.case_context(CASE["regression"])
    out += [
        ("theory/training_steps.tex.j2", "theory/q1_2_a.tex", {}),
        ("theory/forward.tex.j2", "theory/q1_2_b.tex", regression),
        ("theory/backward.tex.j2", "theory/q1_2_c.tex", regression),
        ("theory/elements.tex.j2", "theory/q1_2_d.tex", regression),
    ]
    for key, target in (("classification_mse", "q1_3_a"), ("classification_bce", "q1_3_b")):
        ctx = network.case_context(CASE[key])
        ctx["product"] = latex(network.readable(network.sigmoid_bce_product(), yhat_j))
        out.append(("theory/changes.tex.j2", "theory/{}.tex".format(target), ctx))
    out.append(("theory/relu_depth.tex.j2", "theory/q1_3_c.tex", network.saturation_context()))
    for number, alg in enumerate(update_rules.ALGORITHMS, 1):
        out.append(("theory/loss_derivation.tex.j2", "theory/q1_4_{}.tex".format(number),
                    update_rules.algorithm_context(alg)))
    out += [
        ("theory/softargmax.tex.j2", "theory/q1_5_a.tex", concepts.softmax_context()),
        ("theory/graph.tex.j2", "theory/q1_5_b.tex", computational_graph.graph_context()),
        ("theory/derivative_plots.tex.j2", "theory/q1_5_c.tex", derivative_plots.plots_context()),
        ("theory/linear_maps.tex.j2", "theory/q1_5_d.tex", concepts.linear_maps_context()),
        ("theory/training_objective.tex.j2", "theory/q1_5_e.tex", {}),
    ]
    return out
