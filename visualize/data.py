"""Procedurally drawn images: the data set the bundled classifier learns from.

Eight classes of shapes and textures, each drawn with random colours, position, size, rotation,
period and noise, so that the class is carried by the form rather than by one colour.  All
drawing is numpy, deterministic for a given seed.
"""
import numpy as np

CLASSES = ['disc', 'square', 'triangle', 'ring',
           'horizontal stripes', 'vertical stripes', 'checkerboard', 'polka dots']
SIZE = 48


def _colours(rng):
    """A foreground and a background colour that differ clearly in brightness."""
    while True:
        fg, bg = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
        if abs(fg.mean() - bg.mean()) > 0.25:
            return fg, bg


def _soft(signed_distance, edge=0.8):
    """Antialiased mask from a signed distance in pixels (positive inside)."""
    return np.clip(0.5 + signed_distance / edge, 0.0, 1.0)


def _rotated(xx, yy, angle):
    c, s = np.cos(angle), np.sin(angle)
    return c * xx + s * yy, -s * xx + c * yy


def draw(label, rng, size=SIZE):
    """One (size, size, 3) float32 image in [0, 1] of class `label`."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    fg, bg = _colours(rng)
    name = CLASSES[label]
    if name in ('disc', 'square', 'triangle', 'ring'):
        cx, cy = rng.uniform(0.3, 0.7, 2) * size
        r = rng.uniform(0.16, 0.3) * size
        u, v = _rotated(xx - cx, yy - cy, rng.uniform(0, 2 * np.pi))
        if name == 'disc':
            d = r - np.hypot(u, v)
        elif name == 'square':
            d = 0.85 * r - np.maximum(np.abs(u), np.abs(v))
        elif name == 'triangle':
            # intersection of three half-planes, inradius r / 2
            d = np.full_like(u, np.inf)
            for k in range(3):
                a = 2 * np.pi * k / 3
                d = np.minimum(d, 0.5 * r - (np.cos(a) * u + np.sin(a) * v))
        else:
            thickness = rng.uniform(0.25, 0.45) * r
            d = thickness / 2 - np.abs(np.hypot(u, v) - (r - thickness / 2))
        mask = _soft(d)
    else:
        period = rng.uniform(6.0, 13.0)
        phase_u, phase_v = rng.uniform(0, period, 2)
        u, v = _rotated(xx, yy, rng.uniform(-0.15, 0.15))
        u, v = u + phase_u, v + phase_v
        # distance to the edge of the band, as a fraction of the period: positive inside
        band_v = period / 4 - np.abs(np.mod(v, period) - period / 2)
        band_u = period / 4 - np.abs(np.mod(u, period) - period / 2)
        if name == 'horizontal stripes':
            mask = _soft(band_v)
        elif name == 'vertical stripes':
            mask = _soft(band_u)
        elif name == 'checkerboard':
            mask = _soft(band_u) * _soft(band_v) + _soft(-band_u) * _soft(-band_v)
        else:
            du = np.mod(u, period) - period / 2
            dv = np.mod(v, period) - period / 2
            mask = _soft(rng.uniform(0.22, 0.34) * period - np.hypot(du, dv))
    image = mask[..., None] * fg + (1 - mask[..., None]) * bg
    image = image * rng.uniform(0.8, 1.1) + rng.normal(0, rng.uniform(0.0, 0.05), image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def make_dataset(count, seed, size=SIZE):
    """(images N x 3 x H x W float32 in [0, 1], labels N int64), classes balanced, shuffled."""
    rng = np.random.RandomState(seed)
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    images = np.stack([draw(int(label), rng, size) for label in labels])
    return images.transpose(0, 3, 1, 2).copy(), labels.astype(np.int64)
