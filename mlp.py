"""The homework's two-layer MLP: Linear_1 -> f -> Linear_2 -> g, with a manual backward.

This file holds only the wiring and the checks on the caller's input. Every forward and
backward formula comes from generated/layers.py, which `make derive` prints from the SymPy
definitions in derive/. No autograd is used: the backward pass is the chain of
vector-Jacobian products, each ``grad`` being dJ/d(that layer's result), one row per sample.
"""
import contextlib
import operator

import torch

# The generated forward/backward code. The submission's self-contained mlp.py
# (generated/mlp_standalone.py) has the code itself in place of this import.
from generated.layers import (ACCURATE_ACTIVATIONS, ACTIVATIONS, bce_loss_backward, bce_loss_forward,
                              cross_entropy_loss_backward, cross_entropy_loss_forward, linear_backward_bias,
                              linear_backward_input, linear_backward_weight, linear_forward, mse_loss_backward,
                              mse_loss_forward, nll_loss_backward, nll_loss_forward)


# numerics="torch" computes every derivative as PyTorch does (the course's tests take autograd
# as the truth); "accurate" uses the forms ACCURACY.md measures closest to the true derivative.
NUMERICS = {"torch": ACTIVATIONS, "accurate": ACCURATE_ACTIVATIONS}


def _activation(name, argument, numerics="torch"):
    valid = sorted(ACTIVATIONS)
    if not isinstance(name, str):
        raise TypeError("{} must be a string naming an activation, got {} {!r}; expected one of: {}"
                        .format(argument, type(name).__name__, name, ", ".join(valid)))
    if name not in ACTIVATIONS:
        raise ValueError("unknown activation {!r} for {}; expected one of: {}".format(
            name, argument, ", ".join(valid)))
    return NUMERICS[numerics][name]


def _positive_int(value, argument):
    """An integral number >= 1 (int, numpy or 0-d integer tensor) as a Python int."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < 1:
        raise ValueError("{} must be a positive int, got {} {!r}".format(
            argument, type(value).__name__, value))
    return number


def _same_kind(tensor, reference, what, reference_what):
    """One dtype and one device for every tensor of a computation, or a clear error."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError("{} must be a torch.Tensor, got {}".format(what, type(tensor).__name__))
    if tensor.dtype != reference.dtype or tensor.device != reference.device:
        raise ValueError("{} is {} on {} but {} is {} on {}; convert one with .to(...)".format(
            what, tensor.dtype, tensor.device, reference_what, reference.dtype, reference.device))


class MLP:
    def __init__(
        self,
        linear_1_in_features,
        linear_1_out_features,
        f_function,
        linear_2_in_features,
        linear_2_out_features,
        g_function,
        numerics="torch"
    ):
        """
        Args:
            linear_1_in_features: the in features of first linear layer
            linear_1_out_features: the out features of first linear layer
            linear_2_in_features: the in features of second linear layer
            linear_2_out_features: the out features of second linear layer
            f_function: string for the f function, a name of ACTIVATIONS: every
                elementwise activation of torch.nn (relu, sigmoid, tanh, gelu, ...; the
                catalogue is derive/activations.py, `python -m derive explain --list`), and
                softmax, log_softmax over each row's features (derive/vector_layers.py)
            g_function: string for the g function, same choices
            numerics: "torch" (default), the derivatives as PyTorch computes them, or
                "accurate", the forms closest to the true derivative (see ACCURACY.md)
        """
        linear_1_in_features = _positive_int(linear_1_in_features, "linear_1_in_features")
        linear_1_out_features = _positive_int(linear_1_out_features, "linear_1_out_features")
        linear_2_in_features = _positive_int(linear_2_in_features, "linear_2_in_features")
        linear_2_out_features = _positive_int(linear_2_out_features, "linear_2_out_features")
        if linear_1_out_features != linear_2_in_features:
            raise ValueError(
                "linear_1_out_features ({}) must equal linear_2_in_features ({}): the second "
                "layer reads the first one's output".format(linear_1_out_features, linear_2_in_features))
        if not isinstance(numerics, str) or numerics not in NUMERICS:
            raise ValueError("numerics must be one of {}, got {!r}".format(
                ", ".join(repr(n) for n in NUMERICS), numerics))
        self.f = _activation(f_function, "f_function", numerics)
        self.g = _activation(g_function, "g_function", numerics)
        self.numerics = numerics
        self.f_function = f_function
        self.g_function = g_function

        self.parameters = dict(
            W1=torch.randn(linear_1_out_features, linear_1_in_features),
            b1=torch.randn(linear_1_out_features),
            W2=torch.randn(linear_2_out_features, linear_2_in_features),
            b2=torch.randn(linear_2_out_features),
        )
        self.grads = dict(
            dJdW1=torch.zeros(linear_1_out_features, linear_1_in_features),
            dJdb1=torch.zeros(linear_1_out_features),
            dJdW2=torch.zeros(linear_2_out_features, linear_2_in_features),
            dJdb2=torch.zeros(linear_2_out_features),
        )

        # put all the cache value you need in self.cache
        self.cache = dict()

    def forward(self, x):
        """
        Args:
            x: tensor shape (batch_size, linear_1_in_features)
        """
        parameters = self.parameters
        W1, b1, W2, b2 = parameters["W1"], parameters["b1"], parameters["W2"], parameters["b2"]
        _same_kind(b1, W1, "parameters['b1']", "parameters['W1']")
        _same_kind(W2, W1, "parameters['W2']", "parameters['W1']")
        _same_kind(b2, W1, "parameters['b2']", "parameters['W1']")
        _same_kind(x, W1, "x", "parameters['W1']")
        if x.dim() != 2 or x.shape[1] != W1.shape[1]:
            raise ValueError("x has shape {} but the network expects (batch_size, {}) "
                             "(linear_1_in_features)".format(tuple(x.shape), W1.shape[1]))

        f, g = self.f, self.g
        z1 = linear_forward(x, W1, b1)
        z2 = f["forward"](z1)
        z3 = linear_forward(z2, W2, b2)
        y_hat = g["forward"](z3)

        # Keep only what the backward needs: x and z2 for the weight gradients, and each
        # activation's input and/or result as its generated backward says ("saves").
        f_values = {"input": z1, "result": z2}
        g_values = {"input": z3, "result": y_hat}
        self.cache = {"x": x, "W2": W2, "y_hat_shape": tuple(y_hat.shape),
                      "f": {s: f_values[s] for s in f["saves"]},
                      "g": {s: g_values[s] for s in g["saves"]}}
        # An accurate backward that reads f's input alone: keep z1 and recompute z2 = f(z1)
        # in backward, so that no more is kept than autograd keeps (it saves z2).
        if self.numerics == "torch" or "input" not in f["saves"] or "result" in f["saves"]:
            self.cache["z2"] = z2
        # As autograd does: remember each saved tensor's version counter, so that backward()
        # can refuse values changed in place since (e.g. x += 1, y_hat.clamp_(...)).
        self.cache["versions"] = [(key, tensor, tensor._version) for key, tensor in _saved(self.cache)]
        return y_hat

    def backward(self, dJdy_hat):
        """
        Args:
            dJdy_hat: The gradient tensor of shape (batch_size, linear_2_out_features)
        """
        if "x" not in self.cache:
            raise RuntimeError("backward() needs the values of a forward pass: call forward(x) "
                               "first (clear_grad_and_cache() also empties the cache)")
        W2 = self.cache["W2"]
        _same_kind(dJdy_hat, W2, "dJdy_hat", "parameters['W2']")
        if tuple(dJdy_hat.shape) != self.cache["y_hat_shape"]:
            raise ValueError("dJdy_hat has shape {} but y_hat has shape {}".format(
                tuple(dJdy_hat.shape), self.cache["y_hat_shape"]))

        for key, tensor, version in self.cache["versions"]:
            if tensor._version != version:
                raise RuntimeError(
                    "{} was changed in place after forward() (its version went from {} to {}), so "
                    "backward() would use the changed values; call forward() again, or change a "
                    "copy (.clone()) instead".format(_saved_name(key), version, tensor._version))

        # Each backward overwrites self.grads with the gradients of this forward pass: plain
        # tensors, also when x or a parameter requires grad (no autograd graph is recorded).
        with _no_graph(dJdy_hat, *(tensor for _, tensor, _ in self.cache["versions"])):
            dJdz3 = self.g["backward"](dJdy_hat, **self.cache["g"])
            z2 = self.cache["z2"] if "z2" in self.cache else self.f["forward"](self.cache["f"]["input"])
            self.grads["dJdW2"] = linear_backward_weight(dJdz3, z2)
            self.grads["dJdb2"] = linear_backward_bias(dJdz3)
            dJdz2 = linear_backward_input(dJdz3, W2)
            dJdz1 = self.f["backward"](dJdz2, **self.cache["f"])
            self.grads["dJdW1"] = linear_backward_weight(dJdz1, self.cache["x"])
            self.grads["dJdb1"] = linear_backward_bias(dJdz1)
        # No gradient for x: nothing upstream of the first layer needs it.

    def clear_grad_and_cache(self):
        for grad in self.grads:
            self.grads[grad].zero_()
        self.cache = dict()


def _saved(cache):
    """(key, tensor) of every tensor backward() reads from the cache; _saved_name(key) names it
    for a message (only then: forward() runs this on every call)."""
    yield "x", cache["x"]
    yield "W2", cache["W2"]
    if "z2" in cache:  # else recomputed from f's input, which is checked below
        yield "z2", cache["z2"]
    for layer in ("f", "g"):
        for name, tensor in cache[layer].items():
            yield (layer, name), tensor


def _saved_name(key):
    names = {"x": "x", "W2": "parameters['W2']", "z2": "the first activation's result",
             ("g", "result"): "y_hat (the forward's result)"}
    return names.get(key) or "{}_function's {}".format(*key)


def _no_graph(*tensors):
    """torch.no_grad() where a tensor would otherwise record a graph, else nothing: entering
    no_grad costs more than a small layer's backward, and is needed only with requires_grad."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return torch.no_grad()
    return contextlib.nullcontext()


def _check_pair(y, y_hat):
    if not isinstance(y_hat, torch.Tensor):
        raise TypeError("y_hat must be a torch.Tensor, got {}".format(type(y_hat).__name__))
    _same_kind(y, y_hat, "y", "y_hat")
    if y.shape != y_hat.shape:
        raise ValueError("y has shape {} but y_hat has shape {}: they must be equal".format(
            tuple(y.shape), tuple(y_hat.shape)))


def mse_loss(y, y_hat):
    """
    Args:
        y: the label tensor (batch_size, linear_2_out_features)
        y_hat: the prediction tensor (batch_size, linear_2_out_features)

    Return:
        J: scalar of loss
        dJdy_hat: The gradient tensor of shape (batch_size, linear_2_out_features)
    """
    _check_pair(y, y_hat)
    with _no_graph(y_hat, y):  # dJdy_hat is a plain tensor, also when y_hat requires grad
        dJdy_hat = mse_loss_backward(y_hat, y)
    return mse_loss_forward(y_hat, y), dJdy_hat


def bce_loss(y, y_hat):
    """
    Args:
        y_hat: the prediction tensor, values in [0, 1]
        y: the label tensor

    Return:
        loss: scalar of loss
        dJdy_hat: The gradient tensor of shape (batch_size, linear_2_out_features)
    """
    _check_pair(y, y_hat)
    _check_range(y_hat, 0, 1, "bce_loss", "in [0, 1] (e.g. g_function='sigmoid')")
    # Targets as torch.nn.BCELoss wants them: in [0, 1], no NaN (a target of -1 or 2 would give
    # a negative or meaningless loss without any error).
    if y.numel() and not (y.min().item() >= 0 and y.max().item() <= 1):
        bad = ~((y >= 0) & (y <= 1))
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError("bce_loss needs y (the targets) in [0, 1], as torch.nn.BCELoss does; {} of "
                         "its {} values are outside or NaN, the first y{} = {}".format(
                             int(bad.sum()), y.numel(), list(first), y[first].item()))
    with _no_graph(y_hat, y):  # dJdy_hat is a plain tensor, also when y_hat requires grad
        dJdy_hat = bce_loss_backward(y_hat, y)
    return bce_loss_forward(y_hat, y), dJdy_hat


def _check_distribution_rows(y, y_hat, loss):
    """Targets of the classification losses: one probability row per sample (one-hot or
    soft), shaped like y_hat: no NaN, nothing negative, each row summing to 1."""
    if isinstance(y, torch.Tensor) and not y.is_floating_point():
        raise ValueError("{} takes y as probability rows shaped like y_hat (one-hot or soft), not {} "
                         "class indices: use torch.nn.functional.one_hot(y, num_classes).to(y_hat.dtype)".format(
                             loss, y.dtype))
    _check_pair(y, y_hat)
    if y.dim() != 2:
        raise ValueError("{} needs y and y_hat shaped (batch_size, classes), got {}".format(loss, tuple(y.shape)))
    if not y.numel():
        return
    # A row of K float values summing to 1 rounds to within a few K ulps of 1.
    tolerance = max(1e-6, 8 * y.shape[1] * torch.finfo(y.dtype).eps)
    sums = y.sum(1)
    # Three reductions decide the common case; NaN fails every comparison and takes the
    # elementwise path below, which names it.
    if y.min().item() >= 0 and sums.min().item() >= 1 - tolerance and sums.max().item() <= 1 + tolerance:
        return
    bad = torch.isnan(y) | (y < 0)
    if bool(bad.any()):
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError("{} needs targets y that are probabilities (>= 0); {} of its values are negative "
                         "or NaN, the first y[{}, {}] = {}".format(loss, int(bad.sum()), row, col, y[row, col].item()))
    off = (sums - 1).abs()
    row = int(off.argmax())
    raise ValueError("{} needs each row of y to sum to 1 (a one-hot or soft label, within {:.1g}); "
                     "{} rows do not, e.g. row {} sums to {}".format(
                         loss, tolerance, int((off > tolerance).sum()), row, sums[row].item()))


def _check_range(y_hat, low, high, loss, expected):
    """y_hat within [low, high]; NaN passes (it propagates, like every other NaN here)."""
    if not y_hat.numel():
        return
    if (low == -float("inf") or y_hat.min().item() >= low) and y_hat.max().item() <= high:
        return  # the common case, in one or two reductions
    outside = (y_hat < low) | (y_hat > high)
    if bool(outside.any()):
        raise ValueError("{} needs y_hat {}; {} of its {} values are outside, from {} to {}".format(
            loss, expected, int(outside.sum()), y_hat.numel(), y_hat.min().item(), y_hat.max().item()))


def cross_entropy_loss(y, y_hat):
    """
    Args:
        y: the targets, one probability row per sample (one-hot or soft), (batch_size, classes)
        y_hat: the predicted probabilities, e.g. g_function='softmax', (batch_size, classes)

    Return:
        J: scalar, -mean over the batch of sum_k y log y_hat (each log clamped at -100)
        dJdy_hat: The gradient tensor of shape (batch_size, classes)
    """
    _check_distribution_rows(y, y_hat, "cross_entropy_loss")
    _check_range(y_hat, 0, 1, "cross_entropy_loss", "in [0, 1] (probabilities, e.g. g_function='softmax')")
    with _no_graph(y_hat, y):  # dJdy_hat is a plain tensor, also when y_hat requires grad
        dJdy_hat = cross_entropy_loss_backward(y_hat, y)
    return cross_entropy_loss_forward(y_hat, y), dJdy_hat


def nll_loss(y, y_hat):
    """
    Args:
        y: the targets, one probability row per sample (one-hot or soft), (batch_size, classes)
        y_hat: log-probabilities, e.g. g_function='log_softmax', (batch_size, classes)

    Return:
        J: scalar, -mean over the batch of sum_k y y_hat
        dJdy_hat: The gradient tensor of shape (batch_size, classes)
    """
    _check_distribution_rows(y, y_hat, "nll_loss")
    _check_range(y_hat, -float("inf"), 0, "nll_loss", "<= 0 (log-probabilities, e.g. g_function='log_softmax')")
    with _no_graph(y_hat, y):  # dJdy_hat is a plain tensor, also when y_hat requires grad
        dJdy_hat = nll_loss_backward(y_hat, y)
    return nll_loss_forward(y_hat, y), dJdy_hat
