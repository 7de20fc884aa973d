"""Herbie's bits of error between two arrays of floats of one dtype."""
import numpy as np

_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def ordinals(values):
    """Each float's position on the number line of its dtype: neighbours differ by 1, and
    -0 and +0 share 0. (IEEE floats are sign-magnitude integers in disguise.)"""
    values = np.asarray(values)
    as_int = values.view(_INT[values.dtype]).astype(np.int64)
    magnitude = as_int & np.int64(np.iinfo(_INT[values.dtype]).max)
    return np.where(as_int < 0, -magnitude, magnitude)


def bits_of_error(computed, truth):
    """log2(1 + floats between computed and truth), elementwise. A NaN costs every bit of
    the format (32 or 64); truth must be finite."""
    computed, truth = np.asarray(computed), np.asarray(truth)
    if computed.dtype != truth.dtype:
        raise ValueError("computed is {} but truth is {}".format(computed.dtype, truth.dtype))
    width = computed.dtype.itemsize * 8
    distance = np.abs(ordinals(computed) - ordinals(truth)).astype(np.float64)
    bits = np.log2(1.0 + distance)
    return np.where(np.isnan(computed), float(width), np.minimum(bits, width))


def summary(bits, where):
    """max (with the input where it occurs), 99th percentile and mean."""
    worst = int(np.argmax(bits))
    return {"max": float(bits[worst]), "p99": float(np.percentile(bits, 99)), "mean": float(np.mean(bits)),
            "max_at": float(where[worst]), "points": int(bits.size)}
