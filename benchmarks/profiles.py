"""The accurate profile's cost: mlp.MLP with numerics="accurate" against the default torch
profile and autograd, at one size, for every activation whose accurate form differs."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils import benchmark

import mlp
from benchmarks import memory, paths
from generated import layers


def differing():
    """The activations whose accurate backward is not the torch profile's."""
    return [name for name, row in layers.ACCURATE_ACTIVATIONS.items() if row is not layers.ACTIVATIONS[name]]


class _Activation(nn.Module):
    """torch's own function of that name (its autograd formula), else the generated forward."""

    def __init__(self, name):
        super().__init__()
        self.function = getattr(F, name, None) or layers.ACTIVATIONS[name]["forward"]

    def forward(self, z):
        return self.function(z)


def measure(shape, names=None, min_run_time=0.4, rounds=3, threads=1):
    """One row per activation: seconds per MSE step (forward + loss + backward, float32) for
    the torch profile, the accurate profile and autograd, and the bytes each keeps."""
    rows = []
    for name in names or differing():
        case = paths.make_case(shape, "relu", "identity", "mse")
        batch, n_in, hidden, n_out = shape
        nets = {}
        for numerics in ("torch", "accurate"):
            net = mlp.MLP(n_in, hidden, name, hidden, n_out, "identity", numerics=numerics)
            net.parameters = {k: v.clone() for k, v in case.net.parameters.items()}
            nets[numerics] = net
        case.seq[1] = _Activation(name)
        steps = {numerics: paths.generated_step(paths.Case(case.shape, name, "identity", "mse", case.x, case.y,
                                                           net, case.seq, case.params))
                 for numerics, net in nets.items()}
        steps["autograd"] = paths.autograd_step(case)
        timers = {k: benchmark.Timer(stmt="step()", globals={"step": s}, num_threads=threads,
                                     label="numerics profiles", sub_label=name, description=k)
                  for k, s in steps.items()}
        for s in steps.values():
            s()
        measured = {k: [] for k in timers}
        for _ in range(rounds):  # interleaved, so drifts of the machine hit all three alike
            for k, t in timers.items():
                measured[k].append(t.blocked_autorange(min_run_time=min_run_time))
        seconds = {k: benchmark.Measurement.merge(m)[0].median for k, m in measured.items()}
        kept = {k: memory.generated_kept_bytes(net, case.x) for k, net in nets.items()}
        kept["autograd"] = memory.autograd_kept_bytes(case.seq, case.x)
        rows.append({"name": name, "shape": tuple(shape), "seconds": seconds, "bytes": kept})
    return rows
