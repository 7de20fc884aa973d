"""1.5(a) and 1.5(d): softmax as a soft argmax, and four linear maps."""
import sympy as sp

from derive import linear
from derive.latex_printer import latex
from derive.theory import network
from derive.theory.network import K

# -- 1.5(a): softmax with a temperature --------------------------------------------------------
T = sp.Symbol("T", positive=True)


def softmax_context():
    zi, zj = sp.symbols("z_i z_j", real=True)
    jj = sp.Symbol("j", integer=True)
    expr = sp.exp(zi / T) / sp.Sum(sp.exp(zj / T), (jj, 1, K))
    return {"softmax": latex(expr, fold_short_frac=True)}


# -- 1.5(d): four linear maps ------------------------------------------------------------------
def linear_maps_context():
    th, k_, s1, s2 = sp.symbols("theta k s_1 s_2", real=True)
    maps = [
        ("Rotation", sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])),
        ("Reflection", sp.Matrix([[1, 0], [0, -1]])),
        ("Scaling", sp.Matrix([[s1, 0], [0, s2]])),
        ("Shearing", sp.Matrix([[1, k_], [0, 1]])),
    ]
    # Two affine layers compose to one: W2 (W1 x + b1) + b2 = W x + b.
    net = network
    composed = net.W2 * (net.W1 * net.x + net.b1) + net.b2
    W, b = net.W2 * net.W1, net.W2 * net.b1 + net.b2
    assert sp.expand(composed - (W * net.x + b)) == sp.ZeroMatrix(*composed.shape)
    return {"maps": [{"name": nm, "matrix": latex(M)} for nm, M in maps],
            "composed": latex(composed), "affine": latex(linear.z),
            "W": latex(linear.W) + " = " + latex(W), "b": latex(linear.b) + " = " + latex(b)}
