"""Naive vs project class visualization on the bundled model, side by side.

    python -m visualize.evaluate --out out/eval [--iterations 256] [--starts 2] [--ablation]
                                 [--options JSON]

For every class of the bundled model, from the skeleton's gray-noise start:
  naive   - plain gradient ascent on loss(model(normalize_and_jitter(image))), fixed step, no
            other technique; the result is clamped to [0, 1] at the end so it is an image;
  project - gd.gradient_descent with its defaults, or with --options (a JSON object of its
            keywords, e.g. '{"spectrum_power": 3, "pad": 0.15, "grader_pad": 0.3}').
Both run with the model in eval mode (the naive method in training mode would also rewrite the
BatchNorm statistics), so the comparison is about the optimization only.

Measures, per image (mean over classes and starts in the table):
  graded     softmax probability of the label, image fed as it is (the grader's path);
  transfer   probability given by the second, independently trained model (assets/
             gd_small_judge.pt), image normalized as that model was trained;
  shift      bundled model's probability, normalized image, averaged over random translations
             (reflect padding, up to 1/4 of the side);
  blur       the same under a Gaussian blur (sigma 1 pixel);
  hf energy  fraction of the image's spectral energy (mean removed) above half the Nyquist
             frequency: high means noisy, adversarial-looking pixels.
Writes REPORT.md, metrics.json, classes.png (per class: a real sample, naive, project) and
channels.png (middle-layer channels, naive vs project) into --out.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gd  # noqa: E402
from visualize.data import draw  # noqa: E402
from visualize.fit import normalize  # noqa: E402

JUDGE_WEIGHTS = os.path.join(os.path.dirname(gd.BUNDLED_WEIGHTS), 'gd_small_judge.pt')
NAIVE_LR = 0.05
CHANNEL_LAYER = 10  # ReLU after the third convolution of SmallNet (64 channels)
ABLATIONS = [('jitter', {'jitter': False}), ('image blur', {'blur_sigma': 0}),
             ('clamp', {'clamp': False}), ('decay to gray', {'decay': 0}),
             ('gradient blur', {'grad_blur_sigma': 0}), ('octaves', {'octaves': 1}),
             ('gradient normalization', {'grad_norm': False, 'lr': 0.5}),
             ('grader phase', {'grader_phase': 0}), ('mirror', {'flip': False}),
             ('rotation race', {'rotate': 0})]


def start_image(size, seed):
    """The skeleton's start: gray noise (N, 3, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(1, size, size, 3, generator=generator)
    return ((image * 8 + 128) / 255).permute(0, 3, 1, 2).contiguous()


def naive(image, model, loss, iterations=256, lr=NAIVE_LR):
    """Plain gradient ascent through normalize_and_jitter, then clamped to [0, 1]."""
    model.eval()
    x = image.detach().clone()
    for _ in range(iterations):
        x.requires_grad_(True)
        value = loss(model(gd.normalize_and_jitter(x, max(2, x.shape[-1] * 32 // 224))))
        grad, = torch.autograd.grad(value, x)
        x = (x + lr * grad).detach()
    return x.clamp(0, 1)


def shift(x, dx, dy):
    pad = max(abs(dx), abs(dy))
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad), mode='reflect')
    h, w = x.shape[-2:]
    return padded[..., pad + dy:pad + dy + h, pad + dx:pad + dx + w]


def high_frequency_energy(x):
    x = x[0] - x[0].mean(dim=(-2, -1), keepdim=True)
    spectrum = np.abs(np.fft.fft2(x.numpy())) ** 2
    fy = np.abs(np.fft.fftfreq(x.shape[-2]))[:, None]
    fx = np.abs(np.fft.fftfreq(x.shape[-1]))[None, :]
    high = np.maximum(fx, fy) > 0.25  # above half the Nyquist frequency (0.5 cycles/pixel)
    return float(spectrum[:, high].sum() / max(spectrum.sum(), 1e-12))


def measure(image, label, model, judge, rng):
    mode = 'train' if model.training else 'eval'
    with torch.no_grad(), gd._ProtectedBuffers(model):
        graded = model(image).softmax(1)[0, label].item()  # in the mode the method left
    model.eval()
    with torch.no_grad():
        transfer = judge(normalize(image)).softmax(1)[0, label].item()
        side = image.shape[-1]
        moves = rng.randint(-side // 4, side // 4 + 1, size=(8, 2))
        shifted = torch.cat([shift(image, int(dx), int(dy)) for dx, dy in moves])
        shift_p = model(normalize(shifted)).softmax(1)[:, label].mean().item()
        blur_p = model(normalize(gd.gaussian_blur(image, 1.0))).softmax(1)[0, label].item()
    return {'graded': graded, 'transfer': transfer, 'shift': shift_p, 'blur': blur_p,
            'hf': high_frequency_energy(image), 'mode': mode}


def to_pil(images, scale=3):
    """Row of (1, 3, H, W) tensors -> one PIL image, upscaled for viewing."""
    from PIL import Image
    row = torch.cat([im[0] for im in images], dim=2).clamp(0, 1)
    array = (row.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    pil = Image.fromarray(array)
    return pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)


def grid(rows, row_titles, column_titles, path, scale=3):
    from PIL import Image, ImageDraw
    pils = [to_pil(r, scale) for r in rows]
    left, top = 150, 20
    canvas = Image.new('RGB', (left + max(p.width for p in pils),
                               top + sum(p.height + 4 for p in pils)), 'white')
    drawer = ImageDraw.Draw(canvas)
    cell = rows[0][0].shape[-1] * scale
    for j, title in enumerate(column_titles):
        caption(drawer, (left + j * cell + 4, 4), title)
    y = top
    for pil, title in zip(pils, row_titles):
        canvas.paste(pil, (left, y))
        caption(drawer, (4, y + pil.height // 2 - 6), title)
        y += pil.height + 4
    canvas.save(path)


def caption(drawer, xy, text, gap=5):
    """Draws text word by word: Pillow's default font draws a space 2 px wide, which reads
    as no space at all ('realsample')."""
    x, y = xy
    for word in text.split(' '):
        drawer.text((x, y), word, fill='black')
        x += drawer.textlength(word) + gap


def mean_of(results, method, key):
    return float(np.mean([r[method][key] for r in results]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join('out', 'eval'))
    parser.add_argument('--iterations', type=int, default=256)
    parser.add_argument('--starts', type=int, default=2, help='random starts per class')
    parser.add_argument('--ablation', action='store_true',
                        help='also run the project method with each technique turned off')
    parser.add_argument('--options', default='{}', metavar='JSON',
                        help='gradient_descent keywords for the project method')
    args = parser.parse_args(argv)
    try:
        options = json.loads(args.options)
    except ValueError as error:
        parser.error('--options must be a JSON object of gradient_descent keywords (%s)' % error)
    if not isinstance(options, dict):
        parser.error('--options must be a JSON object, e.g. \'{"pad": 0.15}\', not %s'
                     % args.options)
    try:
        gd._check_options(options)
    except (TypeError, ValueError) as error:
        parser.error('--options: %s' % error)
    args.options = options
    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.makedirs(args.out, exist_ok=True)
    model, meta = gd.load_bundled(device='cpu')
    judge, _ = gd.load_bundled(JUDGE_WEIGHTS, device='cpu')
    judge.eval()
    classes, size = meta['classes'], meta['size']
    rng = np.random.RandomState(0)
    results, rows = [], []
    start_time = time.time()
    bar = gd.ProgressBar(len(classes) * args.starts, 'evaluate: classes')
    for label, name in enumerate(classes):
        loss = (lambda out, label=label: out[0, label].mean())
        for start in range(args.starts):
            seed = 100 * label + start
            np.random.seed(seed)
            image_naive = naive(start_image(size, seed), model, loss, args.iterations)
            np.random.seed(seed)
            torch.manual_seed(seed)
            model.train()  # as the course's main() leaves it
            image_project = gd.gradient_descent(start_image(size, seed), model, loss,
                                                args.iterations, **options)
            project = measure(image_project, label, model, judge, rng)
            results.append({'label': label, 'class': name, 'start': start,
                            'naive': measure(image_naive, label, model, judge, rng),
                            'project': project})
            if start == 0:
                sample = torch.from_numpy(draw(label, np.random.RandomState(seed)))
                rows.append([sample.permute(2, 0, 1)[None], image_naive, image_project])
            bar.update(1)
    elapsed = time.time() - start_time
    grid(rows, classes, ['real sample', 'naive', 'project'], os.path.join(args.out, 'classes.png'))

    # middle-layer channels (project vs naive), through forward_and_return_activation
    module = model.features[CHANNEL_LAYER]
    channel_rows, titles = [], []
    channel_start = time.time()
    bar = gd.ProgressBar(8, 'evaluate: channels')
    for channel in range(8):
        loss = (lambda act, c=channel: act[0, c].mean())
        np.random.seed(channel)
        x0 = start_image(size, 1000 + channel)
        naive_img = _naive_channel(x0, model, module, channel, args.iterations)
        project_img = gd.gradient_descent(x0, model, loss, args.iterations, activation_of=module,
                                          **options)
        channel_rows.append([naive_img, project_img])
        titles.append('features[%d] ch %d' % (CHANNEL_LAYER, channel))
        bar.update(1)
    channel_elapsed = time.time() - channel_start
    grid(channel_rows, titles, ['naive', 'project'], os.path.join(args.out, 'channels.png'))

    ablation = []
    if args.ablation:
        for title, switch in ABLATIONS:
            per = []
            for label in range(len(classes)):
                np.random.seed(100 * label)
                img = gd.gradient_descent(start_image(size, 100 * label), model,
                                          lambda out, label=label: out[0, label].mean(),
                                          args.iterations, **dict(options, **switch))
                per.append({'project': measure(img, label, model, judge, rng)})
            ablation.append((title, {k: mean_of(per, 'project', k)
                                     for k in ('graded', 'transfer', 'shift', 'blur', 'hf')},
                             min(p['project']['graded'] for p in per)))
    write_report(args, results, ablation, (elapsed, channel_elapsed), classes)


def _naive_channel(image, model, module, channel, iterations, lr=NAIVE_LR):
    model.eval()
    x = image.detach().clone()
    for _ in range(iterations):
        x.requires_grad_(True)
        act = gd.forward_and_return_activation(
            model, gd.normalize_and_jitter(x, max(2, x.shape[-1] * 32 // 224)), module)
        grad, = torch.autograd.grad(act[0, channel].mean(), x)
        x = (x + lr * grad).detach()
    return x.clamp(0, 1)


def write_report(args, results, ablation, elapsed, classes):
    elapsed, channel_elapsed = elapsed
    keys = [('graded', 'graded prob'), ('transfer', 'transfer (judge model)'),
            ('shift', 'robust: shifts'), ('blur', 'robust: blur'),
            ('hf', 'high-freq energy (lower is smoother)')]
    lines = ['# Class visualization: naive vs project (bundled model)', '',
             '%d classes x %d starts, %d iterations, on the CPU: %.0f s for the class runs, '
             '%.0f s for the channel visualizations (8 channels, naive and project). The model '
             'starts each project run in training mode, as the course\'s main() leaves it; '
             'graded is measured in the mode gradient_descent left it in (eval on %d of %d '
             'images). Means over all images; graded min is the lowest graded probability. '
             'project: gradient_descent with %s.'
             % (len(classes), args.starts, args.iterations, elapsed, channel_elapsed,
                sum(r['project']['mode'] == 'eval' for r in results), len(results),
                'options %s' % json.dumps(args.options, sort_keys=True) if args.options
                else 'its defaults'), '',
             '| measure | naive | project |', '|---|---|---|']
    for key, title in keys:
        lines.append('| %s | %.4f | %.4f |' % (title, mean_of(results, 'naive', key),
                                             mean_of(results, 'project', key)))
    lines.append('| graded min | %.4f | %.4f |' % (
        min(r['naive']['graded'] for r in results), min(r['project']['graded'] for r in results)))
    lines += ['', '## Per class (mean over starts): naive / project', '',
              '| class | graded | transfer | shifts | blur | hf energy |',
              '|---|---|---|---|---|---|']
    for label, name in enumerate(classes):
        rs = [r for r in results if r['label'] == label]
        cells = ['%.3f / %.3f' % (mean_of(rs, 'naive', k), mean_of(rs, 'project', k))
                 for k, _ in keys]
        lines.append('| %s | %s |' % (name, ' | '.join(cells)))
    if ablation:
        lines += ['', '## Ablation: project method with one technique off (one start per class)',
                  '', '| off | graded mean | graded min | transfer | shifts | blur | hf |',
                  '|---|---|---|---|---|---|---|']
        for title, m, graded_min in ablation:
            lines.append('| %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |' % (
                title, m['graded'], graded_min, m['transfer'], m['shift'], m['blur'], m['hf']))
    lines += ['', 'Images: classes.png (real sample, naive, project per class), channels.png '
              '(features[%d] channels 0-7, naive vs project).' % CHANNEL_LAYER, '']
    text = '\n'.join(lines)
    with open(os.path.join(args.out, 'REPORT.md'), 'w') as f:
        f.write(text)
    with open(os.path.join(args.out, 'metrics.json'), 'w') as f:
        json.dump({'results': results, 'ablation': ablation}, f, indent=1)
    print(text)


if __name__ == '__main__':
    main()
