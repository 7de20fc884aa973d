"""The one helper that compares the generated path with torch autograd.

``compare_mlp`` runs mlp.py's MLP (forward, loss, backward) and the same network built from
torch.nn with the same, shared weights, then compares y_hat, J, dJ/dy_hat and the four
gradients. ``compare_layer`` does the same for one generated layer function.
"""
import torch
import torch.nn.functional as F

import mlp
from generated import layers

from derive import activations, vector_layers


def torch_reference(row):
    """PyTorch's own function for a catalogue row (its ``reference``, with torch's defaults).
    A row without one (added by `python -m derive explain --add`) is compared with autograd
    through its own printed forward, as explain does."""
    if row.reference is None:
        return lambda input: layers.ACTIVATIONS[row.name]["forward"](input)
    code = compile(row.reference, "<{} reference>".format(row.name), "eval")
    return lambda input: eval(code, {"torch": torch, "F": F, "input": input})


TORCH_ACTIVATIONS = {row.name: torch_reference(row)
                     for row in activations.ACTIVATIONS + vector_layers.VECTOR_LAYERS}
TORCH_LOSSES = {
    "mse": F.mse_loss, "bce": F.binary_cross_entropy,  # reduction='mean'
    # The same compositions, differentiated by autograd: mean over the batch of the row sums.
    "cross_entropy": lambda y_hat, y: -(y * torch.clamp(torch.log(y_hat), min=-100)).sum() / y_hat.shape[0],
    "nll": lambda y_hat, y: -(y * y_hat).sum() / y_hat.shape[0],
}
OUR_LOSSES = {"mse": mlp.mse_loss, "bce": mlp.bce_loss, "cross_entropy": mlp.cross_entropy_loss,
              "nll": mlp.nll_loss}
# Losses whose targets are probability rows (one-hot by default here).
CLASSIFICATION = ("cross_entropy", "nll")


def assert_close(ours, theirs, what, scale_floor=1.0):
    """float64: relative 1e-5. float32: the course's ``(a - b).norm() < 1e-3``, relative to the
    size of the value when that is large (gradients at |z| = 1e4 are). ``scale_floor`` is the
    size of the terms a value sums: a sum of +-1e4 terms that cancels to 0 carries their
    rounding error, not its own."""
    assert ours.shape == theirs.shape, "{}: shape {} != {}".format(
        what, tuple(ours.shape), tuple(theirs.shape))
    assert ours.dtype == theirs.dtype, "{}: dtype {} != {}".format(what, ours.dtype, theirs.dtype)
    finite = torch.isfinite(theirs)
    assert (torch.isfinite(ours) | ~finite).all(), "{}: not finite where autograd is".format(what)
    ours, theirs = ours[finite], theirs[finite]  # (autograd through a row's own forward may overflow)
    diff = (ours.double() - theirs.double()).norm().item()
    scale = max(theirs.double().norm().item(), scale_floor)
    if ours.dtype == torch.float64:
        bound = 1e-5 * scale
    else:
        bound = 1e-3 * scale
    assert diff <= bound, "{}: |ours - autograd| = {:.3g} > {:.3g} (|autograd| = {:.3g})".format(what, diff, bound, scale)


def compare_mlp(f, g, loss, shape, dtype=torch.float64, x=None, y=None, weights=None, device="cpu",
                scale_floor=1.0):
    """shape = (batch, in, hidden, out). Returns the two results for extra checks."""
    batch, n_in, hidden, n_out = shape
    net = mlp.MLP(linear_1_in_features=n_in, linear_1_out_features=hidden, f_function=f,
                  linear_2_in_features=hidden, linear_2_out_features=n_out, g_function=g)
    net.parameters = {k: v.to(dtype=dtype, device=device) for k, v in net.parameters.items()}
    if weights is not None:
        net.parameters.update({k: v.to(dtype=dtype, device=device) for k, v in weights.items()})
    if x is None:
        x = torch.randn(batch, n_in)
    if y is None and loss in CLASSIFICATION:
        y = F.one_hot(torch.randint(n_out, (batch,)), n_out) * 1.0
    if y is None:
        y = torch.randn(batch, n_out) if loss == "mse" else (torch.rand(batch, n_out) < 0.5) * 1.0
    x, y = x.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)

    net.clear_grad_and_cache()
    y_hat = net.forward(x)
    J, dJdy_hat = OUR_LOSSES[loss](y, y_hat)
    net.backward(dJdy_hat)

    params = {k: v.detach().clone().requires_grad_() for k, v in net.parameters.items()}
    with torch.enable_grad():
        z1 = F.linear(x, params["W1"], params["b1"])
        ref_y_hat = TORCH_ACTIVATIONS[g](F.linear(TORCH_ACTIVATIONS[f](z1), params["W2"], params["b2"]))
        ref_y_hat.retain_grad()
        ref_J = TORCH_LOSSES[loss](ref_y_hat, y)
        ref_J.backward()

    label = "{}/{}/{} {} {}".format(f, g, loss, shape, dtype)
    assert_close(y_hat, ref_y_hat.detach(), label + " y_hat", scale_floor)
    assert_close(J, ref_J.detach(), label + " J", scale_floor)
    assert_close(dJdy_hat, ref_y_hat.grad, label + " dJdy_hat", scale_floor)
    for name in ("W1", "b1", "W2", "b2"):
        assert_close(net.grads["dJd" + name], params[name].grad, label + " dJd" + name, scale_floor)
    return net, (J, y_hat, dJdy_hat)


def compare_activation(name, z):
    """The generated forward and backward of one activation against autograd at z."""
    activation = layers.ACTIVATIONS[name]
    grad = torch.linspace(-2, 3, z.numel(), dtype=z.dtype).reshape(z.shape)
    result = activation["forward"](z)
    saved = {"input": z, "result": result}
    ours = activation["backward"](grad, **{k: saved[k] for k in activation["saves"]})
    z_ = z.clone().requires_grad_()
    with torch.enable_grad():
        ref = TORCH_ACTIVATIONS[name](z_)
        ref.backward(grad)
    label = "{} at {}".format(name, z.dtype)
    assert_close(result, ref.detach(), label + " forward")
    assert_close(ours, z_.grad, label + " backward")
    assert torch.isfinite(result).all() and torch.isfinite(ours).all(), label + ": not finite"
