"""The four ways to get the MLP's gradients, built on the same weights and data.

A shape is (batch, in_features, hidden, out_features). Each ``*_step`` is one forward, the
loss and the backward that leaves dJ/dW1, dJ/db1, dJ/dW2, dJ/db2 computed; the floor is the
matrix multiplies alone: the forward's two and the backward's three (no input gradient for the
first layer).
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import mlp

# (f_function, g_function, loss) pairs that are benchmarked at every size,
PAIRS = (("relu", "identity", "mse"), ("relu", "sigmoid", "bce"))
# and those benchmarked at some sizes only.
EXTRA_PAIRS = {"mid": (("relu", "log_softmax", "nll"),)}


def pairs_at(size, pairs=PAIRS, extra=None):
    return tuple(pairs) + tuple((EXTRA_PAIRS if extra is None else extra).get(size, ()))


_MODULES = {"relu": nn.ReLU, "identity": nn.Identity, "sigmoid": nn.Sigmoid,
            "log_softmax": lambda: nn.LogSoftmax(dim=1)}
_FUNCTIONS = {"relu": torch.relu, "identity": lambda t: t, "sigmoid": torch.sigmoid,
              "log_softmax": lambda t: torch.log_softmax(t, 1)}
# nll with probability-row targets, as mlp.nll_loss: the same composition for autograd.
_LOSSES = {"mse": F.mse_loss, "bce": F.binary_cross_entropy,
           "nll": lambda y_hat, y: -(y * y_hat).sum() / y_hat.shape[0]}
_MLP_LOSSES = {"mse": mlp.mse_loss, "bce": mlp.bce_loss, "nll": mlp.nll_loss}


@dataclass
class Case:
    shape: tuple
    f: str
    g: str
    loss: str
    x: torch.Tensor
    y: torch.Tensor
    net: mlp.MLP  # the generated path
    seq: nn.Sequential  # autograd
    params: dict  # torch.func: plain tensors, the same values


def make_case(shape, f, g, loss, seed=0, dtype=torch.float32):
    batch, n_in, hidden, n_out = shape
    gen = torch.Generator().manual_seed(seed)
    net = mlp.MLP(n_in, hidden, f, hidden, n_out, g)
    # Default nn.Linear-like scale, so that sigmoid outputs are not saturated at large sizes.
    for name, (rows, fan_in) in (("W1", (hidden, n_in)), ("b1", (hidden, n_in)),
                                 ("W2", (n_out, hidden)), ("b2", (n_out, hidden))):
        size = (rows, fan_in) if name.startswith("W") else (rows,)
        bound = fan_in ** -0.5
        net.parameters[name] = (torch.rand(size, generator=gen, dtype=dtype) * 2 - 1) * bound
    x = torch.randn(batch, n_in, generator=gen, dtype=dtype)
    if loss == "bce":
        y = (torch.rand(batch, n_out, generator=gen) > 0.5).to(dtype)
    elif loss == "nll":  # one-hot rows
        y = F.one_hot(torch.randint(n_out, (batch,), generator=gen), n_out).to(dtype)
    else:
        y = torch.randn(batch, n_out, generator=gen, dtype=dtype)

    seq = nn.Sequential(nn.Linear(n_in, hidden), _MODULES[f](), nn.Linear(hidden, n_out), _MODULES[g]())
    seq = seq.to(dtype)
    with torch.no_grad():
        seq[0].weight.copy_(net.parameters["W1"])
        seq[0].bias.copy_(net.parameters["b1"])
        seq[2].weight.copy_(net.parameters["W2"])
        seq[2].bias.copy_(net.parameters["b2"])
    params = {k: v.clone() for k, v in net.parameters.items()}
    return Case(tuple(shape), f, g, loss, x, y, net, seq, params)


def generated_step(case):
    """Returns a no-argument callable: mlp.MLP forward, the project's loss, mlp.MLP backward."""
    net, x, y, loss = case.net, case.x, case.y, _MLP_LOSSES[case.loss]

    def step():
        y_hat = net.forward(x)
        _, dJdy_hat = loss(y, y_hat)
        net.backward(dJdy_hat)
    return step


def autograd_step(case):
    """nn.Sequential + torch.nn.functional loss + loss.backward(); grads set to None first
    (optimizer.zero_grad()'s default), so nothing is accumulated."""
    seq, x, y, loss = case.seq, case.x, case.y, _LOSSES[case.loss]
    parameters = list(seq.parameters())

    def step():
        for p in parameters:
            p.grad = None
        loss(seq(x), y).backward()
    return step


def functional_forward(params, x, f, g):
    z = F.linear(x, params["W1"], params["b1"])
    z = _FUNCTIONS[f](z)
    z = F.linear(z, params["W2"], params["b2"])
    return _FUNCTIONS[g](z)


def func_step(case):
    """torch.func.grad of a functional forward + loss, with respect to the parameter dict."""
    f, g, loss = case.f, case.g, _LOSSES[case.loss]

    def objective(params, x, y):
        return loss(functional_forward(params, x, f, g), y)

    grad = torch.func.grad(objective)
    params, x, y = case.params, case.x, case.y
    out = {}

    def step():
        out["grads"] = grad(params, x, y)
    step.out = out
    return step


def floor_step(case):
    """The five matrix multiplies alone, on tensors of the right shapes."""
    batch, n_in, hidden, n_out = case.shape
    x, W1, W2 = case.x, case.params["W1"], case.params["W2"]
    h = torch.randn(batch, hidden, dtype=x.dtype)
    g3 = torch.randn(batch, n_out, dtype=x.dtype)
    g1 = torch.randn(batch, hidden, dtype=x.dtype)

    def step():
        x.mm(W1.t())        # forward, layer 1
        h.mm(W2.t())        # forward, layer 2
        g3.t().mm(h)        # dJ/dW2
        g3.mm(W2)           # dJ/dz2
        g1.t().mm(x)        # dJ/dW1 (no dJ/dx)
    return step


def gradients(case):
    """The gradients of the three paths after one step each, for a sanity check:
    {"generated"|"autograd"|"func": (dW1, db1, dW2, db2)}."""
    generated_step(case)()
    autograd_step(case)()
    fstep = func_step(case)
    fstep()
    grads = case.net.grads
    seq = case.seq
    fg = fstep.out["grads"]
    return {
        "generated": tuple(grads[k] for k in ("dJdW1", "dJdb1", "dJdW2", "dJdb2")),
        "autograd": (seq[0].weight.grad, seq[0].bias.grad, seq[2].weight.grad, seq[2].bias.grad),
        "func": tuple(fg[k] for k in ("W1", "b1", "W2", "b2")),
    }
