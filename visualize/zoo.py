"""A zoo of classifiers gd.py has never seen, each with an independently trained twin as judge.

    python -m visualize.zoo [--out out/zoo] [--only NAME,...] [--generation G]

Six families, all trained here, deterministically on the CPU, on 32 px drawings (the ResNet:
64 px) of the eight classes of visualize.data (other seeds and sizes than the bundled SmallNet's):

  vgg_bn       VGG-like: conv + BatchNorm + ReLU blocks, adaptive pooling, dropout classifier
  plain        a plain CNN: no BatchNorm, no dropout
  groupnorm    GroupNorm instead of BatchNorm
  resnet       torchvision's ResNet (BasicBlock, one block per stage) at 64 px
  raw_bn       a BatchNorm CNN trained on *un-normalized* images (the grader's input as it is)
  dropout_cnn  no normalization layer, Dropout2d and dropout

TUNE holds the families gd.py's defaults may be tuned on, HELD_OUT the ones only reported on
(`make gd-eval`); never tune on HELD_OUT.  Weights are cached under --out (out/ is not
committed): a missing file is trained again with the same seeds (a few minutes each on one
CPU core; --device cuda is faster, but its weights differ in the last bits).  A generation G > 0
trains the same families again from other seeds and other drawings (files NAME_ROLE_gG.pt): a
fresh held-out half, for when the last one has informed a choice.  Generations 0 to 3 have
(visualize/RESULTS.md), so they are tuning data now, and `make gd-eval` reports on generation 4's
held-out half, whose run with the present defaults is the baseline a next change is set
against: never tune on that one.  Generation 5's held-out half was run once with the same
defaults, as a second such baseline (never tune on it either).  Both were run once more to
confirm option final_blur of gd.py, their raw_bn once more for option normalization, and both
once more for options flip and rotate, each chosen on generations 0-2 beforehand; nothing was
chosen on either.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from visualize.data import CLASSES, make_dataset  # noqa: E402
from visualize.fit import fit, normalize  # noqa: E402

SIZE = 32
TUNE = ['vgg_bn', 'plain', 'groupnorm']
HELD_OUT = ['resnet', 'raw_bn', 'dropout_cnn']
DEFAULT_DIR = os.path.join('out', 'zoo')


def _conv(cin, cout, norm):
    layers = [nn.Conv2d(cin, cout, 3, padding=1)]
    if norm == 'bn':
        layers.append(nn.BatchNorm2d(cout))
    elif norm == 'gn':
        layers.append(nn.GroupNorm(4, cout))
    return layers + [nn.ReLU()]


class VGGLike(nn.Module):
    """features (conv-BN-ReLU, max-pool), adaptive pooling, a dropout classifier: VGG in small."""

    def __init__(self, num_classes, norm='bn', widths=(16, 32, 64), dropout=0.5,
                 spatial_dropout=0.0):
        super(VGGLike, self).__init__()
        layers, cin = [], 3
        for width in widths:
            layers += _conv(cin, width, norm) + _conv(width, width, norm)
            if spatial_dropout:
                layers.append(nn.Dropout2d(spatial_dropout))
            layers.append(nn.MaxPool2d(2))
            cin = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        head = [nn.Dropout(dropout)] if dropout else []
        self.classifier = nn.Sequential(*(head + [nn.Linear(cin * 4, 64), nn.ReLU()] + head
                                          + [nn.Linear(64, num_classes)]))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _resnet(num_classes):
    from torchvision.models.resnet import BasicBlock, ResNet
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)


# name -> (constructor, input normalized like ImageNet?, image side).  The ResNet gets 64 px: at
# 32 px its last stage is 1x1, where BatchNorm cannot run in training mode on one image at all.
FAMILIES = {
    'vgg_bn': (lambda n: VGGLike(n, 'bn'), True, SIZE),
    'plain': (lambda n: VGGLike(n, None, dropout=0.0), True, SIZE),
    'groupnorm': (lambda n: VGGLike(n, 'gn', dropout=0.0), True, SIZE),
    'resnet': (_resnet, True, 2 * SIZE),
    'raw_bn': (lambda n: VGGLike(n, 'bn', dropout=0.0), False, SIZE),
    'dropout_cnn': (lambda n: VGGLike(n, None, dropout=0.3, spatial_dropout=0.1), True, SIZE),
}
ROLES = {'model': 11, 'judge': 29}  # role -> seed offset (the judge: other seeds, other data)


def prepare(name, images):
    """What the network was trained to see: ImageNet-normalized or the image as it is."""
    return normalize(images) if FAMILIES[name][1] else images


def _seed(name, role, generation=0):
    return 1000 * (sorted(FAMILIES).index(name) + 1) + ROLES[role] + 100000 * generation


def train(name, role, epochs=6, count=4800, batch=48, device='cpu', generation=0):
    seed = _seed(name, role, generation)
    torch.manual_seed(seed)
    size = FAMILIES[name][2]
    images, labels = make_dataset(count, seed=seed, size=size)
    val_images, val_labels = make_dataset(400, seed=seed + 1, size=size)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    model = FAMILIES[name][0](len(CLASSES)).to(device)
    fit(model, images, labels, epochs, batch, 2e-3, torch.Generator().manual_seed(seed),
        lambda x: prepare(name, x), device=device)
    model.eval()
    with torch.no_grad():
        logits = model(prepare(name, torch.from_numpy(val_images).to(device)))
    accuracy = (logits.argmax(1).cpu().numpy() == val_labels).mean()
    return model.cpu(), float(accuracy)


def path_of(directory, name, role, generation=0):
    suffix = '_g%d' % generation if generation else ''
    return os.path.join(directory, '%s_%s%s.pt' % (name, role, suffix))


def load(name, role, directory=DEFAULT_DIR, log=print, device='cpu', generation=0):
    """The zoo's model (trained and cached when missing), in training mode as the grader's."""
    path = path_of(directory, name, role, generation)
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        start = time.time()
        model, accuracy = train(name, role, device=device, generation=generation)
        torch.save({'state_dict': model.state_dict(), 'accuracy': accuracy}, path + '.tmp')
        os.replace(path + '.tmp', path)
        log('zoo: trained %s %s%s: validation accuracy %.3f, %.0f s'
            % (name, role, ' (generation %d)' % generation if generation else '', accuracy,
               time.time() - start))
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    model = FAMILIES[name][0](len(CLASSES))
    model.load_state_dict(checkpoint['state_dict'])
    model.to(device).train()
    return model, checkpoint['accuracy']


def generation(text):
    """argparse type of --generation (here and in visualize.zoo_eval): an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            "must be 0 or more (the zoo's generation: 0 as first trained, G > 0 other seeds "
            'and drawings), not %r' % text)
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=DEFAULT_DIR)
    parser.add_argument('--only', default=None, help='comma-separated family names')
    parser.add_argument('--device', default='cpu', help='where to train (cpu: reproducible)')
    parser.add_argument('--generation', type=generation, default=0,
                        help='0: the zoo as first trained; G > 0: other seeds and drawings')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.only.split(',') if args.only else sorted(FAMILIES)
    for name in names:
        if name not in FAMILIES:
            raise SystemExit('error: unknown family %r; known: %s' % (name, ', '.join(FAMILIES)))
        for role in ROLES:
            _, accuracy = load(name, role, args.out, device=args.device,
                               generation=args.generation)
            print('%s %s: validation accuracy %.3f' % (name, role, accuracy), flush=True)


if __name__ == '__main__':
    main()
