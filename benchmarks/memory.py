"""Bytes kept between forward and backward, counted as distinct storages.

Convention, the same on both sides: a storage counts once however many tensors or views point
into it, and the storages of the input x and of the parameters are left out (they exist
whether or not a backward follows). Only the network is counted (x to y_hat), not the loss.
"""
import torch
from torch.autograd.graph import saved_tensors_hooks


def _storage_key(t):
    s = t.untyped_storage()
    return (t.device.type, t.device.index, s.data_ptr()), s.nbytes()


def tensors_in(obj):
    """Every tensor inside nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors_in(v)


def distinct_storage_bytes(tensors, exclude=()):
    """Sum of the sizes of the distinct storages of ``tensors``, leaving out the storages
    of the tensors in ``exclude``."""
    excluded = {_storage_key(t)[0] for t in exclude}
    sizes = {}
    for t in tensors:
        key, nbytes = _storage_key(t)
        if key not in excluded:
            sizes[key] = nbytes
    return sum(sizes.values())


def generated_kept_bytes(net, x):
    """mlp.MLP: what forward(x) leaves in net.cache for backward."""
    net.forward(x)
    kept = distinct_storage_bytes(tensors_in(net.cache), exclude=[x, *net.parameters.values()])
    net.clear_grad_and_cache()
    return kept


def autograd_saved_bytes(fn, inputs, exclude=()):
    """What autograd saves for backward while ``fn(*inputs)`` runs (saved_tensors_hooks).
    The result is kept alive until the count is made, so nothing saved is freed early."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        out = fn(*inputs)
    kept = distinct_storage_bytes(saved, exclude=[*inputs, *exclude])
    del out
    return kept


def autograd_kept_bytes(seq, x):
    """nn.Sequential: what autograd saves during seq(x)."""
    return autograd_saved_bytes(seq, (x,), exclude=list(seq.parameters()))
