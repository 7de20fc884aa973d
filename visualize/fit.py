"""The training loop of every classifier here: the bundled pair (visualize.train) and the zoo
(visualize.zoo).

Adam with a one-cycle learning rate, a fresh permutation of the data each epoch and random
flips.  Every random number comes from one generator, in a fixed order (the permutation, then
per batch the two flips, then whatever `augment` draws), so on one CPU, thread count and torch
version a model is a function of its seeds: retraining the zoo's plain model gives its cached
weights (out/zoo) bit for bit.  Changing the order of the draws changes every model trained
here, the bundled weights in assets/ included.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gd  # noqa: E402


def normalize(images):
    """ImageNet normalization, as VGG's input (gd.normalize_and_jitter without the jitter)."""
    mean = torch.tensor(gd.IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(gd.IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def fit(model, images, labels, epochs, batch, lr, generator, prepare, augment=None,
        after_epoch=None, device='cpu'):
    """Trains `model` in place on (images, labels), CPU tensors, with cross-entropy.

    prepare(x): what the network sees of a batch (e.g. `normalize`);
    augment(x, generator): further augmentation after the flips, drawing from `generator`;
    after_epoch(epoch, mean_loss): called after each epoch (logging, validation).
    """
    count = len(images)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (count // batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for i in range(count // batch):
            idx = order[i * batch:(i + 1) * batch]
            x = images[idx].to(device)
            if torch.rand(1, generator=generator).item() < 0.5:
                x = x.flip(-1)
            if torch.rand(1, generator=generator).item() < 0.5:
                x = x.flip(-2)
            if augment is not None:
                x = augment(x, generator)
            loss = F.cross_entropy(model(prepare(x)), labels[idx].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        if after_epoch is not None:
            after_epoch(epoch, total / (count // batch))
    return model
