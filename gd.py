"""Homework 1, part 2.2: class visualization by gradient ascent on the input image.

`python gd.py` does what the course skeleton's main() does: for each label it starts from gray
noise, calls `gradient_descent`, saves `img_{label}.jpg` and prints
`ANSWER_FOR_LABEL_{label}: {probability}`.  The printed probability is the grade: the model sees
the returned image *as it is* (no normalization, no jitter) in whatever mode it was left in.

Model: torchvision's vgg13_bn with IMAGENET1K_V1 weights when they can be loaded (torch hub cache
first, then one download attempt with a short timeout).  Otherwise main() says so and falls back
to a small classifier bundled with this file (``assets/gd_small.pt``, class `SmallNet` below),
trained on procedurally drawn shapes and textures (`python -m visualize.train`).

This file is submitted on its own: it imports only numpy, torch, torchvision and the standard
library, parses as Python 3.7 and uses only torch APIs that exist in torch 1.7.1.

How `gradient_descent` makes the graded number high
---------------------------------------------------
* BatchNorm and dropout: main() never calls eval(), so the model is in training mode.  In training
  mode a forward pass uses the statistics of the single image in the batch (which means nothing),
  applies random dropout and *writes* the BatchNorm running statistics.  `gradient_descent` puts
  the model in eval mode and deliberately leaves it there (option ``eval_mode``): the grader's
  `model(image)` that follows then sees the same deterministic network that was optimized, and no
  parameter or buffer of the model is changed.
* The objective goes through `normalize_and_jitter`, the grade does not.  During the last part of
  the run (option ``grader_phase``) the objective also takes the grader's exact path: the image
  fed as it is, without normalization or jitter, on two steps out of three (the last included;
  option ``grader_mix``), the jittered path on the others.  Image blur is switched off there and
  the image is clamped after every step, so the returned image is exactly the one that was
  optimized.
* Cost: a step costs about one plain forward + backward of the model: one model call per step,
  the smaller octaves run the model on the smaller image, the class-weight row of a linear loss
  is found once, and besides the skeleton's normalize_and_jitter the blurs and update are a
  handful of tensor calls.
* The objective is the given ``loss`` (maximized, e.g. the label's logit) plus the log-softmax
  probability of the class the loss points at (found by differentiating ``loss`` with respect to
  the logits), so the *probability*, not only the logit, goes up.

Extra-credit techniques (keyword arguments of `gradient_descent`, defaults in DEFAULT_OPTIONS):
jitter, image blur, clamping to [0, 1], weight decay towards gray (0.5), gradient blur,
multi-scale (octaves), gradient normalization; and channel visualization of middle layers through
`forward_and_return_activation` (``--layer`` / ``--channel`` on the command line).
"""
import argparse
import math
import os
import socket
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import transforms

try:  # torchvision >= 0.13
    from torchvision.models import vgg13_bn, VGG13_BN_Weights
except ImportError:  # older torchvision (e.g. 0.8 with torch 1.7.1): pretrained=True API
    from torchvision.models import vgg13_bn
    VGG13_BN_Weights = None

DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED_WEIGHTS = os.path.join(HERE, 'assets', 'gd_small.pt')
SKELETON_LABELS = [0, 12, 954]


def save_img(image, path):
    # Input to this function is a torch tensor of shape (1, 3, H, W) with values in [0, 1].
    image = image[0].permute(1, 2, 0)
    image = image.detach().cpu().clamp(0, 1).numpy()
    image = (image * 255).round().astype(np.uint8)
    image = transforms.ToPILImage()(image)
    image.save(path)


# --------------------------------------------------------------------------------------------
# The small fallback classifier (its weights are bundled in assets/, trained by visualize.train)
# --------------------------------------------------------------------------------------------

class SmallNet(nn.Module):
    """A VGG-like little network: `features` (conv, BatchNorm, ReLU, max-pool) then a classifier.

    It expects ImageNet-normalized input like torchvision's VGG, and works at any image size
    thanks to the global average pooling.
    """

    def __init__(self, num_classes=8, widths=(16, 32, 64, 96), dropout=0.2):
        super(SmallNet, self).__init__()
        layers = []
        channels = 3
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=False)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _torch_load(path):
    """torch.load with weights_only=True where this torch has it (>= 1.13), else plain."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except TypeError:  # old torch: no weights_only keyword
        return torch.load(path, map_location='cpu')


def load_bundled(path=BUNDLED_WEIGHTS, device=DEVICE):
    """Loads a SmallNet checkpoint; returns (model, checkpoint metadata dict)."""
    if not os.path.exists(path):
        raise FileNotFoundError('bundled weights not found at %s (run `python -m visualize.train`)'
                                % path)
    ckpt = _torch_load(path)
    model = SmallNet(num_classes=len(ckpt['classes']), widths=tuple(ckpt['widths']))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in ckpt['state_dict'].items()})
    model.to(device)
    meta = {'classes': list(ckpt['classes']), 'size': int(ckpt['size'])}
    return model, meta


def load_vgg13_bn(device=DEVICE, allow_download=True, timeout=15.0):
    """Returns (model, None) or (None, reason) when the ImageNet weights cannot be had."""
    if VGG13_BN_Weights is not None:
        url = VGG13_BN_Weights.IMAGENET1K_V1.url
    else:
        url = 'https://download.pytorch.org/models/vgg13_bn-abd245e5.pth'
    try:
        hub_dir = torch.hub.get_dir()
    except AttributeError:
        hub_dir = os.path.join(os.path.expanduser('~'), '.cache', 'torch', 'hub')
    cached = os.path.exists(os.path.join(hub_dir, 'checkpoints', os.path.basename(url)))
    if not cached and not allow_download:
        return None, 'weights are not in the torch hub cache and downloading is off'
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # a download attempt without network must fail fast
    try:
        if VGG13_BN_Weights is not None:
            model = vgg13_bn(weights=VGG13_BN_Weights.IMAGENET1K_V1)
        else:
            model = vgg13_bn(pretrained=True)
    except Exception as error:  # no network, bad cache file, ...
        return None, '%s: %s' % (type(error).__name__, str(error).strip().splitlines()[0]
                                 if str(error).strip() else '')
    finally:
        socket.setdefaulttimeout(old_timeout)
    return model.to(device), None


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

class ProgressBar(object):
    """A minimal progress bar on stderr (the submission may not depend on tqdm)."""

    def __init__(self, total, desc='', width=30, stream=None):
        self.total, self.desc, self.width = max(int(total), 1), desc, width
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.time()
        self.count = 0
        self._last = -1.0

    def update(self, n=1, info=''):
        self.count += n
        now = time.time()
        if self.count < self.total and now - self._last < 0.2:
            return
        self._last = now
        done = int(self.width * self.count / self.total)
        self.stream.write('\r%s [%s%s] %d/%d %.1fs %s' % (
            self.desc, '#' * done, '.' * (self.width - done), self.count, self.total,
            now - self.start, info))
        if self.count >= self.total:
            self.stream.write('\n')
        self.stream.flush()


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        description='Class (or middle-layer channel) visualization by gradient ascent.')
    parser.add_argument('--model', choices=['auto', 'vgg13_bn', 'bundled'], default='auto',
                        help='auto: vgg13_bn with ImageNet weights if they can be loaded, else '
                             'the bundled small classifier (default: auto)')
    parser.add_argument('--labels', type=str, default=None,
                        help='comma-separated labels (default: 0,12,954 for vgg13_bn, every '
                             'class for the bundled model)')
    parser.add_argument('--iterations', type=int, default=256)
    parser.add_argument('--size', type=int, default=None,
                        help='image side in pixels (default: 224 for vgg13_bn, the training '
                             'size for the bundled model)')
    parser.add_argument('--out', default='.',
                        help='output folder (default: the current folder, as the skeleton); '
                             'only img_<label>.jpg / layer<L>_channel<C>.jpg are written')
    parser.add_argument('--layer', type=int, default=None,
                        help='visualize channels of model.features[LAYER] instead of classes')
    parser.add_argument('--channel', type=str, default=None,
                        help='comma-separated channel indices for --layer (default: 0..7)')
    parser.add_argument('--device', default=DEVICE, help='cuda or cpu (default: %s)' % DEVICE)
    parser.add_argument('--no-download', action='store_true',
                        help='use the vgg13_bn weights only if they are already cached')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    return parser.parse_args(argv)


def _int_list(text, what):
    try:
        return [int(t) for t in text.split(',') if t.strip() != '']
    except ValueError:
        raise SystemExit('error: %s must be comma-separated integers, got %r' % (what, text))


def _load_model(args):
    if args.model in ('auto', 'vgg13_bn'):
        model, reason = load_vgg13_bn(args.device, allow_download=not args.no_download)
        if model is not None:
            return model, 'vgg13_bn (ImageNet)', 1000, None, 224
        if args.model == 'vgg13_bn':
            raise SystemExit('error: could not load vgg13_bn ImageNet weights (%s)' % reason)
        print('Could not load vgg13_bn ImageNet weights (%s); falling back to the bundled small '
              'classifier %s.' % (reason, os.path.relpath(BUNDLED_WEIGHTS)), flush=True)
    model, meta = load_bundled(device=args.device)
    return model, 'bundled SmallNet', len(meta['classes']), meta['classes'], meta['size']


def main(argv=None):
    args = _parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('error: --device %s asked for, but CUDA is not available' % args.device)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model, name, num_classes, class_names, native_size = _load_model(args)
    size = args.size or native_size
    if size < 8:
        raise SystemExit('error: --size must be at least 8, got %d' % size)
    if args.iterations < 1:
        raise SystemExit('error: --iterations must be at least 1, got %d' % args.iterations)
    os.makedirs(args.out, exist_ok=True)

    def start_image():
        # exactly the skeleton's starting point: gray noise, (1, 3, H, W)
        image = torch.randn(1, size, size, 3)
        image = (image * 8 + 128) / 255
        image = image.permute(0, 3, 1, 2).to(args.device)
        return image.requires_grad_()

    def bar(desc):
        if args.quiet:
            return None
        progress = ProgressBar(args.iterations, desc)
        return lambda i, info: progress.update(1, info)

    if args.layer is not None:
        return _visualize_channels(args, model, size, start_image, bar)

    if args.labels is None:
        labels = SKELETON_LABELS if class_names is None else list(range(num_classes))
    else:
        labels = _int_list(args.labels, '--labels')
    for label in labels:
        if not 0 <= label < num_classes:
            extra = '' if class_names is None else ' (%s)' % ', '.join(
                '%d=%s' % (i, c) for i, c in enumerate(class_names))
            raise SystemExit('error: unknown label %d for %s: expected an integer in 0..%d%s'
                             % (label, name, num_classes - 1, extra))
    print('model: %s, image size %d, %d iterations, output folder %s'
          % (name, size, args.iterations, args.out), flush=True)

    for label in labels:
        image = start_image()
        image = gradient_descent(image, model, lambda tensor: tensor[0, label].mean(),
                                 iterations=args.iterations, progress=bar('label %d' % label))
        save_img(image, os.path.join(args.out, 'img_{}.jpg'.format(label)))
        out = model(image)
        print('ANSWER_FOR_LABEL_{}: {}'.format(label, out.softmax(1)[0, label].item()),
              flush=True)


def _visualize_channels(args, model, size, start_image, bar):
    features = getattr(model, 'features', None)
    if not isinstance(features, nn.Sequential):
        raise SystemExit('error: --layer needs a model with a `features` Sequential')
    if not 0 <= args.layer < len(features):
        raise SystemExit('error: unknown layer index %d: expected 0..%d (model.features has %d '
                         'modules)' % (args.layer, len(features) - 1, len(features)))
    module = features[args.layer]
    model.eval()
    with torch.no_grad():
        probe = forward_and_return_activation(model, start_image().detach(), module)
    if probe.dim() != 4:
        raise SystemExit('error: features[%d] (%s) does not output feature maps'
                         % (args.layer, type(module).__name__))
    count = probe.shape[1]
    channels = (list(range(min(8, count))) if args.channel is None
                else _int_list(args.channel, '--channel'))
    for channel in channels:
        if not 0 <= channel < count:
            raise SystemExit('error: bad channel %d: features[%d] (%s) has %d channels, expected '
                             '0..%d' % (channel, args.layer, type(module).__name__, count,
                                        count - 1))
    for channel in channels:
        image = gradient_descent(start_image(), model,
                                 lambda act, c=channel: act[0, c].mean(),
                                 iterations=args.iterations, activation_of=module,
                                 progress=bar('layer %d channel %d' % (args.layer, channel)))
        path = os.path.join(args.out, 'layer{}_channel{}.jpg'.format(args.layer, channel))
        save_img(image, path)
        with torch.no_grad():  # measured as optimized: normalized, not jittered
            act = forward_and_return_activation(
                model, transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)(image),
                module)[0, channel].mean().item()
        print('LAYER_{}_CHANNEL_{}: mean activation {:.4f} -> {}'.format(
            args.layer, channel, act, path), flush=True)


# DO NOT CHANGE ANY OTHER FUNCTIONS ABOVE THIS LINE FOR THE FINAL SUBMISSION


def normalize_and_jitter(img, step=32):
    # You should use this as data augmentation and normalization,
    # convnets expect values to be mean 0 and std 1
    dx, dy = np.random.randint(-step, step - 1, 2)
    return transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)(
        img.roll(dx, -1).roll(dy, -2)
    )


# Defaults of the techniques; every one can be turned off through gradient_descent's keywords.
DEFAULT_OPTIONS = {
    # jitter: roll the image randomly before each forward pass (normalize_and_jitter); the roll
    # range is jitter_step, or 32 pixels scaled to the image size when None (in full-size
    # pixels: scaled down with the image in the smaller octaves).
    'jitter': True,
    'jitter_step': None,
    # image blur: every blur_every steps blur the image with a Gaussian of sigma blur_sigma
    # (0 turns it off); never during the grader phase.
    'blur_every': 4,
    'blur_sigma': 0.5,
    # clamp the image to [0, 1] after every step (the result is always clamped at the end).
    'clamp': True,
    # weight decay towards gray: image <- image - decay * (image - 0.5) every step.
    'decay': 0.002,
    # gradient blur: Gaussian blur of the gradient, sigma from grad_blur_sigma down to 0.5 of it.
    'grad_blur_sigma': 1.0,
    # multi-scale: number of octaves, each octave_scale times larger than the previous, the last
    # at full size; the iterations are shared evenly between them (1 turns it off).
    'octaves': 3,
    'octave_scale': 1.5,
    # what the model sees in the smaller octaves (the jittered path): 'octave', the image at the
    # octave's own size (the classic technique: the network works on the coarse image, and a
    # smaller image costs less), or 'full', the octave's image upsampled to the full size.  The
    # grader's path (below) always sees the full-size image.
    'octave_forward': 'octave',
    # gradient normalization: divide the gradient by its mean absolute value, so lr is about the
    # change per pixel per step; when False the raw gradient times lr is used.
    'grad_norm': True,
    # step size, decaying linearly to lr * lr_end over the run.
    'lr': 0.02,
    'lr_end': 0.25,
    # add the log-softmax of the class the loss points at to the objective (class losses only).
    'softmax_objective': True,
    # fraction of the iterations (at the end) whose objective also contains the grader's path:
    # the image fed as it is, no normalization, no jitter (0 turns it off).
    'grader_phase': 0.3,
    # weight of the grader's path against the jittered, normalized path in that phase.
    'grader_weight': 2.0,
    # how the two paths share the grader phase: 'alternate' (each step takes one path, the
    # grader's on grader_weight / (1 + grader_weight) of the steps, the last one included: one
    # forward + backward per step) or 'sum' (every step sums both paths, weighted: twice the
    # cost of a step).
    'grader_mix': 'alternate',
    # put the model in eval mode and leave it there (see the module docstring).
    'eval_mode': True,
    # visualize a middle layer: the loss is applied to this module's output instead of the
    # model's (through forward_and_return_activation).
    'activation_of': None,
    # progress callback: called as progress(iteration, info_string) after every step.
    'progress': None,
}


def _gaussian_taps(sigma, radius):
    """The Gaussian's taps at -radius..radius, normalized to sum 1 (plain Python floats)."""
    taps = [math.exp(-0.5 * (i / float(sigma)) ** 2) for i in range(-radius, radius + 1)]
    total = sum(taps)
    return [t / total for t in taps]


def _gaussian_kernel(sigma):
    radius = max(1, int(math.ceil(2.5 * sigma)))
    return torch.tensor(_gaussian_taps(sigma, radius), dtype=torch.float32)


_BLUR_BASES = {}


def _blur_basis(n, radius, device, dtype):
    """(2 * radius + 1, n * n) tensor B: taps @ B, viewed (n, n), is the matrix M such that
    M @ v is v reflect-padded by `radius` and convolved with the taps.  Cached: it depends only
    on the side and the radius, so each step builds its blur matrix with one product."""
    key = (n, radius, str(device), dtype)
    basis = _BLUR_BASES.get(key)
    if basis is None:
        index = np.abs(np.arange(n)[:, None] + np.arange(-radius, radius + 1)[None, :])
        index = np.where(index > n - 1, 2 * (n - 1) - index, index)  # reflect, no edge repeat
        array = np.zeros((2 * radius + 1, n, n), dtype=np.float32)
        for t in range(2 * radius + 1):
            array[t, np.arange(n), index[:, t]] += 1.0
        basis = torch.from_numpy(array.reshape(2 * radius + 1, n * n)).to(device, dtype)
        if len(_BLUR_BASES) >= 64:
            _BLUR_BASES.clear()
        _BLUR_BASES[key] = basis
    return basis


def _blur_matrix(n, taps, radius):
    """(n, n) matrix: (M @ v) is v reflect-padded by `radius` and convolved with `taps`."""
    return torch.matmul(taps, _blur_basis(n, radius, taps.device, taps.dtype)).view(n, n)


# Up to this side the blur is two small matrix products (blur rows, blur columns); above it a
# depthwise convolution, whose cost does not grow with the side squared.
MATMUL_BLUR_MAX_SIDE = 128


def gaussian_blur(img, sigma):
    """Gaussian blur of a (N, C, H, W) tensor with reflect padding (separable).

    This runs every step of gradient_descent.  On small images a convolution call costs far more
    than its arithmetic, so there the blur is two matrix products with banded (n, n) matrices
    that hold the taps and the reflection: (M_h @ img) @ M_w^T.  Larger images: one reflect pad
    and one depthwise convolution with the outer product of the taps (the Gaussian and reflect
    padding are both separable, so this equals the two 1-D passes).
    """
    if sigma <= 0:
        return img
    radius = min(max(1, int(math.ceil(2.5 * sigma))), img.shape[-1] - 1, img.shape[-2] - 1)
    if radius < 1:
        return img
    taps = torch.tensor(_gaussian_taps(sigma, radius), dtype=img.dtype, device=img.device)
    height, width = img.shape[-2:]
    if max(height, width) <= MATMUL_BLUR_MAX_SIDE:
        rows = _blur_matrix(height, taps, radius)
        cols = rows if width == height else _blur_matrix(width, taps, radius)
        return torch.matmul(torch.matmul(rows, img), cols.t())
    channels = img.shape[1]
    kernel = (taps.view(-1, 1) * taps.view(1, -1)).expand(channels, 1, 2 * radius + 1,
                                                         2 * radius + 1)
    out = F.pad(img, (radius, radius, radius, radius), mode='reflect')
    return F.conv2d(out, kernel, groups=channels)


def _resize(img, size):
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return F.interpolate(img, size=size, mode='bilinear', align_corners=False)


def _class_weights(loss, logits):
    """d loss / d logits at the current logits: for `tensor[0, label].mean()` a one-hot row."""
    probe = logits.detach().clone().requires_grad_()
    value = loss(probe)
    if not probe.requires_grad or not value.requires_grad:
        return None
    grad, = torch.autograd.grad(value, probe, allow_unused=True)
    return None if grad is None else grad.detach()


class _ClassWeights(object):
    """`_class_weights(loss, logits)`, computed once per logits shape when the loss is linear.

    Why caching is valid: when the loss is linear in the logits (`t[0, label].mean()`, any
    weighted sum of logits), d loss / d logits does not depend on the logits at all, so the row
    found at the first step is the row of every step.  Linearity is checked cheaply, once, by
    differentiating at a second, quite different point: the two rows of a linear loss are equal
    (bit for bit: the backward of a linear map never reads its input).  A loss whose rows differ
    (e.g. `t.max()`, `t.softmax(1)[0, label]`) is differentiated at every step, as it must be.
    """

    def __init__(self, loss):
        self.loss = loss
        self.shape = None  # logits shape the cached row belongs to
        self.weights = None
        self.linear = None  # None: not probed yet for this shape

    def __call__(self, logits):
        shape = tuple(logits.shape)
        if self.linear and shape == self.shape:
            return self.weights
        weights = _class_weights(self.loss, logits)
        if shape != self.shape or self.linear is None:
            self.shape, self.linear = shape, False
            if weights is not None:
                base = logits.detach()
                ramp = torch.linspace(-4.0, 4.0, base.numel(), device=base.device,
                                      dtype=base.dtype).view(base.shape)
                other = _class_weights(self.loss, ramp - 2.0 * base.flip(-1))
                self.linear = other is not None and torch.equal(weights, other)
            self.weights = weights
        return weights


def _objective(loss, logits, use_softmax, loss_weight=1.0, class_weights=None):
    """loss_weight * loss(logits) (+ the log-softmax of the class the loss points at)."""
    value = loss(logits) if loss_weight != 0 or not use_softmax else None
    if use_softmax and logits.dim() == 2:
        weights = (class_weights(logits) if class_weights is not None
                   else _class_weights(loss, logits))
        if weights is not None:
            # for a one-hot weight row: logit - logsumexp(logits) = log softmax(label)
            log_prob = (weights * F.log_softmax(logits, 1)).sum()
            return log_prob if value is None else loss_weight * value + log_prob
    return loss(logits) if value is None else value


def _grader_path_steps(grader_steps, weight):
    """Which steps of the grader phase take the grader's path (True) or the jittered one.

    The grader's path gets weight / (1 + weight) of the steps, spread evenly, the last step
    included; with gradient normalization that is the weight `grader_mix='sum'` gives it.
    """
    share = max(0.0, float(weight)) / (1.0 + max(0.0, float(weight)))

    def taken(steps):  # grader's-path steps among the last `steps` (1e-9: float rounding)
        return math.floor(steps * share + 1 - share + 1e-9)

    return [taken(back + 1) > taken(back)  # back: 0 for the last step
            for back in range(grader_steps - 1, -1, -1)]


def gradient_descent(input, model, loss, iterations=256, **options):
    """Maximizes `loss(model(normalize_and_jitter(image)))` over the image; returns the image.

    input: (N, 3, H, W) starting image, values in [0, 1] (not modified).
    loss: maps the model's output (or the activation of `activation_of`) to a scalar to be
        *maximized*, e.g. `lambda out: out[0, label].mean()`.
    iterations: number of gradient steps in total (all octaves and phases included).
    options: see DEFAULT_OPTIONS (each technique has a switch there).
    Returns a detached tensor of the input's shape with values in [0, 1].  Side effect
    (eval_mode=True, the default): the model is left in eval mode, so that the grader's
    `model(image)` afterwards sees the deterministic network that was optimized.
    """
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise TypeError('gradient_descent got unknown option(s) %s; known: %s'
                        % (', '.join(unknown), ', '.join(sorted(DEFAULT_OPTIONS))))
    opt = dict(DEFAULT_OPTIONS)
    opt.update(options)
    if opt['grader_mix'] not in ('alternate', 'sum'):
        raise ValueError("grader_mix must be 'alternate' or 'sum', got %r" % (opt['grader_mix'],))
    if opt['octave_forward'] not in ('octave', 'full'):
        raise ValueError("octave_forward must be 'octave' or 'full', got %r"
                         % (opt['octave_forward'],))
    iterations = int(iterations)
    if opt['eval_mode']:
        model.eval()
    module = opt['activation_of']
    full_size = tuple(input.shape[-2:])
    step = opt['jitter_step']
    if step is None:
        step = max(2, int(round(32 * min(full_size) / 224.0)))
    is_class_loss = module is None
    grader_steps = int(round(opt['grader_phase'] * iterations)) if is_class_loss else 0
    grader_first = iterations - grader_steps
    alternate = opt['grader_mix'] == 'alternate'
    grader_path = _grader_path_steps(grader_steps, opt['grader_weight'])
    class_weights = _ClassWeights(loss)

    def forward(x):
        if module is None:
            return model(x)
        return forward_and_return_activation(model, x, module)

    normalize = transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def jittered(x, step):
        # the handout's path into the network: normalize_and_jitter, exactly as given
        return normalize_and_jitter(x, step) if opt['jitter'] else normalize(x)

    octaves = max(1, int(opt['octaves']))
    sizes = []
    for k in range(octaves):
        factor = opt['octave_scale'] ** (octaves - 1 - k)
        sizes.append((max(8, int(round(full_size[0] / factor))),
                      max(8, int(round(full_size[1] / factor)))))
    bounds = [int(round(iterations * k / float(octaves))) for k in range(octaves + 1)]
    decay = float(opt['decay'])

    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():  # gradients with respect to the image only
        p.requires_grad_(False)
    try:
        image = input.detach().clone().float()
        iteration = 0
        for k in range(octaves):
            # a fresh tensor of our own: the updates below are done in place
            x = _resize(image, sizes[k]).detach().clone()
            scale = x.shape[-1] / float(full_size[-1])
            # the model sees this octave at its own size ('octave'; the last octave is full-size)
            own_size = opt['octave_forward'] == 'octave' and tuple(x.shape[-2:]) != full_size
            octave_step = max(1, int(round(step * scale)))
            for _ in range(bounds[k + 1] - bounds[k]):
                progress_frac = iteration / float(max(1, iterations - 1))
                in_grader_phase = iteration >= grader_first
                x.requires_grad_(True)
                # the grader's path needs the full-size image; so does the jittered one unless
                # the model sees the octave at its own size
                full = _resize(x, full_size) if in_grader_phase or not own_size else None
                if in_grader_phase and alternate and grader_path[iteration - grader_first]:
                    logits = None  # this step takes the grader's path only
                elif own_size:
                    try:
                        logits = forward(jittered(x, octave_step))
                    except (RuntimeError, ValueError):
                        # too small for this model (pooled away, or BatchNorm in training mode
                        # left with one value per channel): this octave runs at full size
                        own_size = False
                        full = _resize(x, full_size)
                        logits = forward(jittered(full, step))
                else:
                    logits = forward(jittered(full, step))
                if in_grader_phase:
                    # probabilities only (the loss alone would also lift the runner-up classes),
                    # on the jittered path and on the grader's exact path: the image as it is,
                    # no normalization, no jitter.  'alternate': one path per step (one forward
                    # and backward, like any other step); 'sum': both paths every step.
                    if logits is None:
                        objective = _objective(loss, forward(full), True, 0.0, class_weights)
                    else:
                        objective = _objective(loss, logits, True, 0.0, class_weights)
                        if not alternate:
                            objective = objective + opt['grader_weight'] * _objective(
                                loss, forward(full), True, 0.0, class_weights)
                else:
                    objective = _objective(loss, logits, opt['softmax_objective'], 1.0,
                                           class_weights)
                grad, = torch.autograd.grad(objective, x)
                x = x.detach()  # the graph is freed: x may be updated in place from here on
                if opt['grad_blur_sigma'] > 0:
                    sigma = opt['grad_blur_sigma'] * (1.0 - 0.5 * progress_frac)
                    grad = gaussian_blur(grad, sigma * scale)
                lr = opt['lr'] * (1.0 - (1.0 - opt['lr_end']) * progress_frac)
                if opt['grad_norm']:
                    x.addcdiv_(grad, grad.abs().mean() + 1e-12, value=lr)
                else:
                    x.add_(grad, alpha=lr)
                if decay > 0:  # x - decay * (x - 0.5)
                    x.mul_(1.0 - decay).add_(0.5 * decay)
                if (opt['blur_every'] and opt['blur_sigma'] > 0 and not in_grader_phase
                        and (iteration + 1) % opt['blur_every'] == 0):
                    x = gaussian_blur(x, opt['blur_sigma'] * scale)
                if opt['clamp']:
                    x.clamp_(0, 1)
                iteration += 1
                if opt['progress'] is not None:
                    opt['progress'](iteration, 'objective %.3f' % objective.item())
            image = _resize(x, full_size).detach() if k == octaves - 1 else x.detach()
        image = _resize(image, full_size)
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return image.clamp(0, 1).detach()


def forward_and_return_activation(model, input, module):
    """Runs `model(input)` and returns the output of `module` (a layer inside the model).

    A forward hook records the module's output; the hook is removed afterwards, also when the
    forward pass raises.  Used for middle-layer (channel) visualization, e.g. with
    `module=model.features[20]` and a loss like `act[0, channel].mean()`.
    """
    features = []

    def hook(model, input, output):
        features.append(output)

    handle = module.register_forward_hook(hook)
    try:
        model(input)
    finally:
        handle.remove()

    return features[0]


if __name__ == '__main__':
    main()
