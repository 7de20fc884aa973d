"""The theory answers of theory.pdf, built from the same objects that generate the code.

One module per group of questions; ``outputs()`` (called by ``derive.render``) lists every
fragment of generated/theory/ with its template and context.
"""
from derive.theory import computational_graph, concepts, derivative_plots, network_tex, update_rules


def outputs():
    cases = network_tex.contexts()
    regression = dict(cases["regression"], chain=network_tex.chain_context())
    out = [
        ("theory/notation.tex.j2", "theory/q1_1.tex", network_tex.notation_context()),
        ("theory/training_steps.tex.j2", "theory/q1_2_a.tex", network_tex.training_steps_context()),
        ("theory/forward.tex.j2", "theory/q1_2_b.tex", regression),
        ("theory/backward.tex.j2", "theory/q1_2_c.tex", regression),
        ("theory/elements.tex.j2", "theory/q1_2_d.tex", regression),
        ("theory/changes.tex.j2", "theory/q1_3_a.tex", cases["classification_mse"]),
        ("theory/changes.tex.j2", "theory/q1_3_b.tex", cases["classification_bce"]),
        ("theory/relu_depth.tex.j2", "theory/q1_3_c.tex", network_tex.saturation_context()),
    ]
    for number, alg in enumerate(update_rules.ALGORITHMS, 1):
        out.append(("theory/loss_derivation.tex.j2", "theory/q1_4_{}.tex".format(number),
                    update_rules.algorithm_context(alg)))
    out += [
        ("theory/softargmax.tex.j2", "theory/q1_5_a.tex", concepts.softmax_context()),
        ("theory/graph.tex.j2", "theory/q1_5_b.tex", computational_graph.graph_context()),
        ("theory/derivative_plots.tex.j2", "theory/q1_5_c.tex", derivative_plots.plots_context()),
        ("theory/linear_maps.tex.j2", "theory/q1_5_d.tex", concepts.linear_maps_context()),
        ("theory/training_objective.tex.j2", "theory/q1_5_e.tex", network_tex.training_objective_context()),
    ]
    return out
