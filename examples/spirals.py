"""A worked example: a two-layer classifier on two interleaved spirals, trained with mlp.py's
manual backward (relu, log_softmax, nll_loss), beside the same training with autograd.

    python -m examples.spirals [--steps 400] [--out out/example]     (make example)

Both runs start from the same weights and take the same full-batch gradient steps; the only
difference is where the gradients come from: mlp.MLP.backward (the code printed from SymPy) or
torch.autograd on the same composition. Their loss curves must agree to float tolerance; the
script says how closely they do, prints the final accuracy, and saves the decision boundary as
a PNG.
"""
import argparse
import math
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

import mlp

CLASSES = 2
# float64: the two curves then agree to ~1e-12, far below anything training changes.
DTYPE = torch.float64
# The largest relative gap between the two loss curves accepted as "equal".
CURVE_RTOL = 1e-9


def spirals(points_per_class=200, turns=1.5, noise=0.08, seed=0, dtype=DTYPE):
    """Two interleaved spirals in the plane: (x of shape (2n, 2), one-hot y of shape (2n, 2),
    labels of shape (2n,)). Class c is the first spiral turned by c * pi."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.15, 1.0, points_per_class, dtype=torch.float64)
    xs, labels = [], []
    for c in range(CLASSES):
        angle = 2 * math.pi * turns * t + math.pi * c
        radius = 2.0 * t
        point = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
        xs.append(point + noise * torch.randn(point.shape, generator=gen, dtype=torch.float64))
        labels.append(torch.full((points_per_class,), c, dtype=torch.long))
    x, labels = torch.cat(xs).to(dtype), torch.cat(labels)
    return x, F.one_hot(labels, CLASSES).to(dtype), labels


def initial_weights(hidden, seed=0, dtype=DTYPE):
    """nn.Linear's default scale, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {"W1": ((hidden, 2), 2), "b1": ((hidden,), 2), "W2": ((CLASSES, hidden), hidden),
              "b2": ((CLASSES,), hidden)}
    return {name: ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(fan_in)).to(dtype)
            for name, (shape, fan_in) in shapes.items()}


def train_manual(x, y, weights, steps, lr):
    """mlp.MLP (relu, log_softmax) + mlp.nll_loss + MLP.backward: no autograd."""
    net = mlp.MLP(2, weights["W1"].shape[0], "relu", weights["W1"].shape[0], CLASSES, "log_softmax")
    net.parameters = {name: value.clone() for name, value in weights.items()}
    losses = []
    for _ in range(steps):
        net.clear_grad_and_cache()
        J, dJdy_hat = mlp.nll_loss(y, net.forward(x))
        net.backward(dJdy_hat)
        for name in net.parameters:
            net.parameters[name] = net.parameters[name] - lr * net.grads["dJd" + name]
        losses.append(J.item())
    return net, losses


def autograd_forward(params, x):
    hidden = torch.relu(F.linear(x, params["W1"], params["b1"]))
    return torch.log_softmax(F.linear(hidden, params["W2"], params["b2"]), 1)


def train_autograd(x, y, weights, steps, lr):
    """The same composition and steps, with gradients from torch.autograd."""
    params = {name: value.clone().requires_grad_() for name, value in weights.items()}
    losses = []
    for _ in range(steps):
        with torch.enable_grad():
            J = -(y * autograd_forward(params, x)).sum() / x.shape[0]
            grads = torch.autograd.grad(J, list(params.values()))
        with torch.no_grad():
            params = {name: (p - lr * g).requires_grad_() for (name, p), g in zip(params.items(), grads)}
        losses.append(J.item())
    return params, losses


def curve_gap(ours, theirs):
    """The largest relative difference between two loss curves, step by step."""
    return max(abs(a - b) / max(abs(b), 1e-300) for a, b in zip(ours, theirs))


def accuracy(net, x, labels):
    return (net.forward(x).argmax(1) == labels).double().mean().item()


def save_boundary(net, x, labels, path, size=360):
    """The plane colored by the predicted class, the training points on top, as a PNG."""
    from PIL import Image, ImageDraw

    extent = float(x.abs().max()) * 1.1
    axis = torch.linspace(-extent, extent, size, dtype=x.dtype)
    gy, gx = torch.meshgrid(-axis, axis, indexing="ij")  # row 0 at the top: largest y
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    probability = torch.exp(net.forward(grid))[:, 1].reshape(size, size)
    light = (torch.tensor([255.0, 214, 170]), torch.tensor([170.0, 200, 255]))  # class 0, class 1
    rgb = light[0] * (1 - probability[..., None]) + light[1] * probability[..., None]
    image = Image.fromarray(rgb.clamp(0, 255).to(torch.uint8).numpy(), "RGB")
    draw = ImageDraw.Draw(image)
    dark = ((200, 90, 0), (20, 70, 200))
    for (px, py), label in zip(x.tolist(), labels.tolist()):
        u = (px + extent) / (2 * extent) * (size - 1)
        v = (extent - py) / (2 * extent) * (size - 1)
        draw.ellipse([u - 2.5, v - 2.5, u + 2.5, v + 2.5], fill=dark[label], outline=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(path))
    return path


def run(steps=400, lr=1.0, hidden=64, seed=0, points_per_class=200):
    """Both trainings from the same start; returns a dict of what the example reports."""
    x, y, labels = spirals(points_per_class, seed=seed)
    weights = initial_weights(hidden, seed=seed)
    start = time.perf_counter()
    net, manual = train_manual(x, y, weights, steps, lr)
    seconds = time.perf_counter() - start
    _, autograd = train_autograd(x, y, weights, steps, lr)
    return {"net": net, "x": x, "labels": labels, "manual": manual, "autograd": autograd,
            "gap": curve_gap(manual, autograd), "accuracy": accuracy(net, x, labels), "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m examples.spirals", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="full-batch gradient steps (default 400)")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate (default 1.0)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights (default 0)")
    parser.add_argument("--out", default="out/example", help="folder for spirals.png (default out/example)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.hidden < 1 or not args.lr > 0:
        parser.error("--steps and --hidden must be positive integers and --lr a positive number")

    report = run(args.steps, args.lr, args.hidden, args.seed)
    manual, autograd = report["manual"], report["autograd"]
    print("two spirals, {} points; relu ({} hidden) -> log_softmax, nll_loss; {} full-batch steps, lr {}".format(
        len(report["x"]), args.hidden, args.steps, args.lr))
    for step in sorted({0, args.steps // 4, args.steps // 2, 3 * args.steps // 4, args.steps - 1}):
        print("  step {:4d}  loss manual {:.6f}  autograd {:.6f}".format(step + 1, manual[step], autograd[step]))
    print("loss curves: largest relative difference {:.2g} over {} steps (limit {:g})".format(
        report["gap"], args.steps, CURVE_RTOL))
    print("final training accuracy: {:.1%} (manual backward, {:.2f} s)".format(report["accuracy"], report["seconds"]))
    path = save_boundary(report["net"], report["x"], report["labels"], pathlib.Path(args.out) / "spirals.png")
    print("decision boundary: {}".format(path))
    if not report["gap"] <= CURVE_RTOL:
        print("error: the manual backward's loss curve differs from autograd's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
