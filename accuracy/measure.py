"""Bits of error of one layer's backward, as mlp.MLP computes it and as torch autograd does.

The network is the one the issue states: W1 = W2 = I, b1 = b2 = 0, g = identity, batch 1 and
dJ/dy_hat = 1, so grads['dJdb1'] is f'(x) at every input x of the row (x @ I is exact).
"""
import numpy as np
import torch
import torch.nn.functional as F

import mlp
from accuracy import metric, reference, sweep
from derive import activations
from derive.functions import elementary
from derive.symbols import input as input_symbol
from generated import layers

CHUNK = 512
DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def through_mlp(name, xs, numerics):
    """f'(x) from grads['dJdb1'] of MLP(width, width, name, width, width, 'identity')."""
    out = []
    for start in range(0, xs.numel(), CHUNK):
        x = xs[start:start + CHUNK]
        width = x.numel()
        net = mlp.MLP(width, width, name, width, width, "identity", numerics=numerics)
        eye, zero = torch.eye(width, dtype=xs.dtype), torch.zeros(width, dtype=xs.dtype)
        net.parameters = dict(W1=eye, b1=zero, W2=eye.clone(), b2=zero.clone())
        net.forward(x.reshape(1, width))
        net.backward(torch.ones(1, width, dtype=xs.dtype))
        out.append(net.grads["dJdb1"])
    return torch.cat(out)


def autograd_function(name):
    """The function torch autograd differentiates: the row's ``reference``, PyTorch's own
    spelling (its own derivative formula), else the generated forward's elementary ops."""
    row = activations.BY_NAME[name]
    if not row.reference:
        return layers.ACTIVATIONS[name]["forward"]
    code = compile(row.reference, "<{} reference>".format(name), "eval")
    return lambda input: eval(code, {"torch": torch, "F": F, "input": input})


def true_values(name, dtype, xs=None):
    """(inputs, correctly rounded f' there, where that is a normal float) for a numpy dtype; the
    inputs are the sweep's unless given."""
    xs = sweep.points(dtype) if xs is None else xs
    truth, normal = reference.true_values(elementary(activations.BY_NAME[name].safe_derivative), input_symbol,
                                          dtype, xs)
    return xs, truth, normal


def through_autograd(name, xs):
    x = xs.clone().requires_grad_()
    with torch.enable_grad():
        autograd_function(name)(x).backward(torch.ones_like(x))
    return x.grad


def layer_bits(name, dtype_name, profiles=("torch", "accurate"), points=sweep.points):
    """{source: bits array} over the normal-truth points, and those points."""
    dtype = DTYPES[dtype_name]
    xs_np, truth, normal = true_values(name, _NUMPY[dtype], points(_NUMPY[dtype]))
    xs = torch.from_numpy(xs_np)
    computed = {profile: through_mlp(name, xs, profile) for profile in profiles}
    computed["autograd"] = through_autograd(name, xs)
    bits = {source: metric.bits_of_error(values.numpy()[normal], truth[normal])
            for source, values in computed.items()}
    return bits, xs_np[normal]


def layer_summary(name, dtype_name, profiles=("torch", "accurate"), points=sweep.points):
    bits, where = layer_bits(name, dtype_name, profiles, points)
    return {source: metric.summary(b, where) for source, b in bits.items()}
