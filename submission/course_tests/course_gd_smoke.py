# Smoke test of gd.py on a tiny conv model: no ImageNet weights, no network.
# Run as `python course_gd_smoke.py` from a folder holding gd.py and this script; every line
# printed must be True.
import os

import numpy as np
import torch
import torch.nn as nn
from torchvision import transforms

import gd

torch.manual_seed(0)
np.random.seed(0)

# the skeleton's names are all there
names = ['save_img', 'main', 'normalize_and_jitter', 'gradient_descent',
         'forward_and_return_activation']
print(all(callable(getattr(gd, name, None)) for name in names))
print(gd.IMAGENET_MEAN == [0.485, 0.456, 0.406] and gd.IMAGENET_STD == [0.229, 0.224, 0.225])

# normalize_and_jitter: a roll by dx, dy in [-step, step - 2] along the last two axes, then
# transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
step = 3
image = torch.rand(1, 3, 11, 9)
before = image.clone()
normalize = transforms.Normalize(mean=gd.IMAGENET_MEAN, std=gd.IMAGENET_STD)
allowed = {}
for dy in range(-step, step - 1):
    for dx in range(-step, step - 1):
        allowed[(dy, dx)] = normalize(image.roll(dy, 2).roll(dx, 3))
seen = set()
every_draw_allowed = True
for _ in range(40):
    out = gd.normalize_and_jitter(image, step)
    match = [shift for shift, expected in allowed.items()
             if out.shape == expected.shape and torch.allclose(out, expected, atol=1e-6)]
    every_draw_allowed = every_draw_allowed and len(match) > 0
    seen.update(match)
print(every_draw_allowed)
print(len(seen) > 1)
print(torch.equal(image, before))

# forward_and_return_activation: the module's output, and the hook is gone afterwards
model = nn.Sequential(
    nn.Conv2d(3, 4, 3, padding=1),
    nn.ReLU(),
    nn.Conv2d(4, 5, 3, padding=1),
    nn.AdaptiveAvgPool2d(1),
    nn.Flatten(),
).to(gd.DEVICE)
x = torch.rand(1, 3, 16, 16).to(gd.DEVICE)
with torch.no_grad():
    expected = model[1](model[0](x))
    activation = gd.forward_and_return_activation(model, x, model[1])
print(activation.shape == expected.shape and (activation - expected).abs().max() < 1e-5)
print(len(model[1]._forward_hooks) == 0)

# gradient_descent runs a few steps and returns an image of the input's shape
start = ((torch.randn(1, 16, 16, 3) * 8 + 128) / 255).permute(0, 3, 1, 2).to(gd.DEVICE)
start.requires_grad_()
result = gd.gradient_descent(start, model, lambda tensor: tensor[0, 2].mean(), iterations=3)
print(tuple(result.shape) == (1, 3, 16, 16) and bool(torch.isfinite(result).all()))

# save_img writes the file
path = 'course_gd_smoke.jpg'
gd.save_img(result.detach().clamp(0, 1).cpu(), path)
print(os.path.exists(path) and os.path.getsize(path) > 0)
os.remove(path)
