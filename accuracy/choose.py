"""Measure every accurate-profile candidate of every activation and record the winner as data
(derive/accurate_forms.json) that `make derive` reads.

A candidate that meets the targets in both dtypes beats one that does not; then a form in
the input's own dtype beats one evaluated in float64 (cheaper), one that saves one tensor
beats one that saves two (memory), and the smaller worst max, then mean, bits win.
"""
import json

import numpy as np
import torch
from tqdm import tqdm

from accuracy import metric, sweep, targets
from accuracy.measure import true_values
from derive import accurate, activations, code
from generated import layers

DTYPES = {"float32": (torch.float32, np.float32), "float64": (torch.float64, np.float64)}


def compile_backward(candidate):
    """The printed backward of a candidate, as a Python function (exactly what would be
    generated)."""
    casts, body = code.accurate_backward(candidate)
    source = "def backward(grad, input=None, result=None):\n" + "".join(
        "    {}\n".format(line) for line in casts + ["return " + body])
    namespace = {"torch": torch}
    exec(compile(source, "<candidate {}>".format(candidate.key), "exec"), namespace)
    return namespace["backward"]


def measure(candidate, activation_name, backward):
    """{dtype: summary} of one candidate over the sweep."""
    forward = layers.ACTIVATIONS[activation_name]["forward"]
    out = {}
    for dtype_name, (dtype, np_dtype) in DTYPES.items():
        xs, truth, normal = true_values(activation_name, np_dtype)
        x = torch.from_numpy(xs)
        saved = {"input": x, "result": forward(x)}
        computed = backward(torch.ones_like(x), **{s: saved[s] for s in candidate.saves}).numpy()
        out[dtype_name] = metric.summary(metric.bits_of_error(computed[normal], truth[normal]), xs[normal])
    return out


def score(candidate, bits):
    misses = sum(bool(targets.accurate_misses(s)) for s in bits.values())
    return (misses, candidate.float64, len(candidate.saves) > 1,
            round(max(s["max"] for s in bits.values()), 1), sum(s["mean"] for s in bits.values()))


def _rounded(stats):
    return {k: (round(v, 3) if isinstance(v, float) and k != "max_at" else v) for k, v in stats.items()}


def choose(activation):
    """(winner's record, every candidate's record) for one activation."""
    measured = []
    for candidate in accurate.candidates(activation):
        try:
            backward = compile_backward(candidate)
        except NotImplementedError:  # e.g. a bare-number Piecewise branch outside grad*
            continue
        proof = accurate.prove(candidate, activation)
        bits = measure(candidate, activation.name, backward)
        measured.append((score(candidate, bits), candidate, proof, bits))
    measured.sort(key=lambda m: m[0])
    records = [{"key": c.key, "start": c.start, "rewrites": list(c.rewrites), "float64": c.float64,
                "saves": list(c.saves), "proof": proof, "bits": {d: _rounded(s) for d, s in bits.items()}}
               for _, c, proof, bits in measured]
    return records[0], records


def main():
    torch.set_num_threads(1)
    layers_out = {}
    for activation in tqdm(activations.ACTIVATIONS, desc="make accuracy: candidates", unit="layer"):
        winner, records = choose(activation)
        layers_out[activation.name] = dict(winner, candidates=records)
    document = {"about": "The accurate profile's form of each activation, chosen by `make accuracy` "
                         "(accuracy/choose.py) from candidates made by derive/accurate.py's rewrites; "
                         "`make derive` reads start, rewrites and float64. Bits of error against mpmath "
                         "on the sweep: " + sweep.DESCRIPTION + ".",
                "layers": layers_out}
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    if not accurate.CHOICES.exists() or accurate.CHOICES.read_text() != text:
        accurate.CHOICES.write_text(text)
    for name, row in layers_out.items():
        print("{:12s} {:45s} {}".format(name, row["key"], "  ".join(
            "{} max {max:.1f} p99 {p99:.2f} mean {mean:.2f}".format(d, **s) for d, s in row["bits"].items())))
    return 0
