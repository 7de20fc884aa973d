"""The issue's targets, as data: what `make accuracy` fails on."""

# The accurate profile, every layer and dtype (bits of error).
ACCURATE = {"max": 10.0, "p99": 4.0, "mean": 1.0}
# The torch profile may be no less accurate than autograd beyond these margins.
TORCH_MARGIN = {"max": 1.0, "mean": 0.25}


def accurate_misses(stats):
    """The accurate targets one layer/dtype misses, as readable strings."""
    return ["{} {:.2f} > {:g}".format(k, stats[k], bound) for k, bound in ACCURATE.items() if stats[k] > bound]


def torch_misses(ours, autograd):
    """Where the torch profile is less accurate than autograd beyond the margins."""
    return ["{} {:.2f} > autograd's {:.2f} + {:g}".format(k, ours[k], autograd[k], margin)
            for k, margin in TORCH_MARGIN.items() if ours[k] > autograd[k] + margin]
