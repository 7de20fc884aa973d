"""gd.py on the zoo's unseen classifiers, graded as the course's main() grades.

    python -m visualize.zoo_eval [--split held-out|tune|all] [--seeds 2] [--device cpu]
                                 [--out out/eval] [--models NAME,...] [--report-only]
                                 [--generation G]

Every model starts in training mode (main() never calls eval()), one model object serves every
label, and the returned image is fed as it is.  Per model, label and start (the skeleton's gray
noise at the family's size), these methods run, 256 iterations each:

  auto        gd.gradient_descent with its defaults (mode measured by the race, normalization
              of the jittered path by the first BatchNorm's running mean, rotation per class
              by the rotation race)
  eval, train gd.gradient_descent with the mode fixed (mode='eval' / 'train')
  student     a plain student method: eval mode, the gradient divided by its mean magnitude,
              lr 0.01, the handout's normalize_and_jitter, a 3x3 box blur every 20 steps, clamp
  adam eval,  the bound: plain Adam (lr 0.01) on the grader's raw path alone (the image as it
  adam train  is, log-probability of the label, clamped), in eval or in training mode

graded: the grader's probability in the mode the method left the model in (training mode: the
mean of 8 forwards, BatchNorm buffers protected, as the expected value of the grader's draw);
transfer: the probability the family's independently trained twin gives the image, fed as that
twin was trained.  Results go to <out>/zoo_<model>.json, the tables to <out>/ZOO.md: each
method's means (the transfer mean with its standard error over the models: a few models are a
small draw), and its difference from auto image by image with the difference's standard
error (transfer is nearly all-or-nothing per image, so only a difference well beyond its error
says more than chance).
--generation G grades the zoo's generation G (visualize.zoo: other seeds and drawings) from
other starting images.
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
from visualize import zoo  # noqa: E402
from visualize.data import CLASSES  # noqa: E402

ITERATIONS = 256
METHODS = ['auto', 'eval', 'train', 'student', 'adam eval', 'adam train']


def start_image(seed, device, size):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(1, size, size, 3, generator=generator)
    return ((image * 8 + 128) / 255).permute(0, 3, 1, 2).contiguous().to(device)


def graded(model, image, label, mode, forwards=8):
    """Expected graded probability with the model in `mode` (buffers untouched)."""
    gd._set_mode(model, mode)
    with torch.no_grad(), gd._ProtectedBuffers(model):
        runs = forwards if mode == 'train' and gd._mode_dependent(model) else 1
        try:
            return float(np.mean([model(image).softmax(1)[0, label].item()
                                  for _ in range(runs)]))
        except (RuntimeError, ValueError):
            return 0.0


def student(image, model, label, iterations=ITERATIONS, lr=0.01):
    model.eval()
    x = image.detach().clone()
    for i in range(iterations):
        x.requires_grad_(True)
        value = model(gd.normalize_and_jitter(x))[0, label]
        grad, = torch.autograd.grad(value, x)
        x = (x.detach() + lr * grad / (grad.abs().mean() + 1e-12))
        if (i + 1) % 20 == 0:
            x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
        x = x.clamp(0, 1)
    return x, 'eval'


def adam(image, model, label, mode, iterations=ITERATIONS, lr=0.01):
    x = image.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    gd._set_mode(model, mode)
    for _ in range(iterations):
        with gd._ProtectedBuffers(model, mode == 'train'):
            value = -F.log_softmax(model(x), 1)[0, label]
            optimizer.zero_grad()
            value.backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach(), mode


def project(image, model, label, mode, **options):
    record = {}
    out = gd.gradient_descent(image, model, lambda t: t[0, label].mean(), ITERATIONS,
                              mode=mode, record=record, **options)
    return out, record


def evaluate_model(name, device, seeds, directory, log, methods=None, variants=None,
                   generation=0):
    """methods: the METHODS to run (default all); variants: {title: gradient_descent options}
    run beside them as further project methods (auto mode); generation: the zoo's."""
    methods = list(METHODS if methods is None else methods)
    variants = dict(variants or {})
    model, accuracy = zoo.load(name, 'model', directory, log=log, device=device,
                               generation=generation)
    judge, judge_accuracy = zoo.load(name, 'judge', directory, log=log, device=device,
                                     generation=generation)
    judge.eval()
    for p in list(model.parameters()) + list(judge.parameters()):
        p.requires_grad_(False)
    rows = []
    for label in range(len(CLASSES)):
        for s in range(seeds):
            seed = 100 * label + s + 10000 * generation
            row = {'model': name, 'label': label, 'class': CLASSES[label], 'seed': s}
            for method in methods + sorted(variants):
                model.train()  # as the grader: the model object as main() has it
                np.random.seed(seed)
                torch.manual_seed(seed)
                start = time.time()
                image = start_image(seed, device, zoo.FAMILIES[name][2])
                record = None
                try:
                    if method == 'student':
                        out, mode = student(image, model, label)
                    elif method.startswith('adam'):
                        out, mode = adam(image, model, label, method.split()[1])
                    elif method in variants:
                        out, record = project(image, model, label, 'auto', **variants[method])
                        mode = 'train' if model.training else 'eval'
                    else:
                        out, record = project(image, model, label, method)
                        mode = 'train' if model.training else 'eval'
                except (RuntimeError, ValueError) as error:  # e.g. training mode impossible
                    row[method] = {'graded': None, 'transfer': None, 'mode': None,
                                   'seconds': None, 'error': str(error).splitlines()[0]}
                    continue
                elapsed = time.time() - start
                with torch.no_grad():
                    transfer = judge(zoo.prepare(name, out)).softmax(1)[0, label].item()
                row[method] = {'graded': graded(model, out, label, mode), 'mode': mode,
                               'transfer': transfer, 'seconds': elapsed}
                if record:
                    row[method]['estimates'] = record.get('estimates')
                    row[method]['trace'] = record.get('trace')
                    row[method]['final_blur'] = record.get('final_blur')
                    row[method]['normalization'] = record.get('normalization')
                    row[method]['rotation'] = record.get('rotation')
            rows.append(row)
            log('%s label %d seed %d: %s' % (name, label, s, ', '.join(
                '%s %s/%s' % (m, _num(row[m]['graded']), _num(row[m]['transfer']))
                for m in methods + sorted(variants))))
    return {'model': name, 'accuracy': accuracy, 'judge_accuracy': judge_accuracy,
            'rows': rows, 'device': str(device), 'generation': generation}


def _num(value):
    return 'n/a' if value is None else '%.3f' % value


def _fmt(values, how):
    """Mean or min of the values a method produced ('n/a' where it could not run at all)."""
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    return '%.3f' % (np.mean(values) if how == 'mean' else np.min(values))


def paired(rows, method, key, against='auto'):
    """`method` against `against`, image by image, on `key` ('graded' or 'transfer'): the mean
    difference, its standard error, and on how many images it is better / worse by more than
    0.1 (None where fewer than two images have both).

    Transfer is nearly all-or-nothing per image: a change too small to matter (lr 0.0201 for
    0.02) moved 31 of 192 images by more than 0.1 (visualize/RESULTS.md, fifth session), so a
    difference of means is worth reading only beside its error."""
    d = np.array([r[method][key] - r[against][key] for r in rows
                  if r.get(method, {}).get(key) is not None
                  and r.get(against, {}).get(key) is not None])
    if len(d) < 2:
        return None
    return d.mean(), gd._standard_error(d), int((d > 0.1).sum()), int((d < -0.1).sum())


def over_models(results, method, key='transfer'):
    """The standard error of `method`'s mean `key` over the models: the spread of the
    per-model means over the square root of their number, i.e. how far another draw of models
    could move the figure (None with fewer than two models).  One model's images share its
    quirks, so the image-by-image error understates this one."""
    means = []
    for result in results:
        values = [r[method][key] for r in result['rows']
                  if r.get(method, {}).get(key) is not None]
        if values:
            means.append(np.mean(values))
    return gd._standard_error(means) if len(means) > 1 else None


def report(results, split):
    rows = [r for result in results for r in result['rows']]
    methods = [m for m in METHODS if rows and m in rows[0]]
    methods += sorted(set(rows[0]) - set(METHODS) - {'model', 'label', 'class', 'seed'}
                      if rows else [])
    lines = ['# gd.py on the zoo (%s half): graded as the course\'s main() grades' % split, '',
             'Models (zoo generation %d): %s; %d labels x %d starts each, %d iterations per '
             'method, device %s. '
             'graded: the label\'s probability in the mode the method left the model in (training '
             'mode: mean of 8 forwards); transfer: the independently trained twin\'s probability.'
             % (results[0].get('generation', 0) if results else 0,
                ', '.join('%s (val. acc. %.3f, twin %.3f)' % (r['model'], r['accuracy'],
                                                                r['judge_accuracy'])
                          for r in results),
                len(CLASSES), len(rows) // max(1, len(CLASSES) * len(results)), ITERATIONS,
                results[0]['device'] if results else '-'), '',
             '| method | graded mean | graded min | transfer mean | transfer min | '
             's / iteration | transfer mean: error over models |', '|---|--:|--:|--:|--:|--:|--:|']
    for method in methods:
        g = [r[method]['graded'] for r in rows]
        t = [r[method]['transfer'] for r in rows]
        sec = [r[method]['seconds'] / ITERATIONS for r in rows if r[method]['seconds']]
        failed = sum(r[method]['graded'] is None for r in rows)
        spread = over_models(results, method)
        lines.append('| %s%s | %s | %s | %s | %s | %s | %s |' % (
            method, ' (could not run on %d images)' % failed if failed else '',
            _fmt(g, 'mean'), _fmt(g, 'min'), _fmt(t, 'mean'), _fmt(t, 'min'),
            '%.4f' % np.mean(sec) if sec else 'n/a',
            'n/a' if spread is None else '+- %.3f' % spread))
    best = [max(r['adam eval']['graded'] or 0.0, r['adam train']['graded'] or 0.0)
            for r in rows if 'adam eval' in r and 'adam train' in r]
    lines.append('| bound: better adam mode per image | %s | %s | - | - | - | - |'
                 % (_fmt(best, 'mean'), _fmt(best, 'min')))
    lines += ['', 'The error over models is the standard error of the per-model transfer means: '
              'how far another draw of %d models could move the transfer mean.' % len(results)]
    lines += ['', '## Per model (auto: graded mean / min, transfer mean; modes chosen)', '',
              '| model | %s | auto chose train | auto did not normalize | auto kept rotation |'
              % ' | '.join(methods), '|---|%s--:|--:|--:|' % ('---|' * len(methods))]
    for result in results:
        rs = result['rows']
        cells = ['%s / %s, %s' % (_fmt([r[m]['graded'] for r in rs], 'mean'),
                                  _fmt([r[m]['graded'] for r in rs], 'min'),
                                  _fmt([r[m]['transfer'] for r in rs], 'mean'))
                 for m in methods]
        chose = sum(r['auto']['mode'] == 'train' for r in rs)
        inputs = [r['auto'].get('normalization') for r in rs]  # (absent from older runs)
        raw = ('-' if all(v is None for v in inputs)
               else '%d of %d' % (sum(v == 'none' for v in inputs), len(rs)))
        turns = [r['auto'].get('rotation') for r in rs]  # (absent from older runs)
        kept = ('-' if all(v is None for v in turns)
                else '%d of %d' % (sum(bool(v and v['kept']) for v in turns), len(rs)))
        lines.append('| %s | %s | %d of %d | %s | %s |' % (
            result['model'], ' | '.join(cells), chose, len(rs), raw, kept))
    others = [m for m in methods if m != 'auto']
    if rows and 'auto' in rows[0] and others:
        lines += ['', '## Against auto, image by image (difference: mean +- standard error; '
                  'images better / worse by more than 0.1)', '',
                  '| method | graded difference | transfer difference | transfer better / worse |',
                  '|---|--:|--:|--:|']
        for method in others:
            g, t = paired(rows, method, 'graded'), paired(rows, method, 'transfer')
            lines.append('| %s | %s | %s | %s |' % (
                method, 'n/a' if g is None else '%+.3f +- %.3f' % g[:2],
                'n/a' if t is None else '%+.3f +- %.3f' % t[:2],
                'n/a' if t is None else '%d / %d' % t[2:]))
    lines += ['', '## Per image: auto\'s race estimates (eval / training), decision, rotation '
              '(kept: the class read the same at every angle) and final blur (sigma)', '',
              '| model | class | seed | estimates | chose | rotation | final blur | graded | '
              'transfer |', '|---|---|--:|---|---|---|--:|--:|--:|']
    for r in rows:
        e = r['auto'].get('estimates') or {}
        cell = ' / '.join('-' if e.get(m) is None else '%.3f' % e[m] for m in ('eval', 'train'))
        blur = r['auto'].get('final_blur')  # (absent from runs before the option)
        turn = r['auto'].get('rotation')  # (absent from runs before the option)
        lines.append('| %s | %s | %d | %s | %s | %s | %s | %.3f | %.3f |' % (
            r['model'], r['class'], r['seed'], cell or '-', r['auto']['mode'],
            '-' if turn is None else ('kept' if turn['kept'] else 'off'),
            '-' if blur is None else '%g' % blur, r['auto']['graded'], r['auto']['transfer']))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--split', choices=['held-out', 'tune', 'all'], default='held-out')
    parser.add_argument('--models', default=None, help='comma-separated zoo names')
    parser.add_argument('--seeds', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--zoo', default=zoo.DEFAULT_DIR, help='the zoo\'s weights folder')
    parser.add_argument('--out', default=os.path.join('out', 'eval'))
    parser.add_argument('--methods', default=None,
                        help='comma-separated subset of: %s' % ', '.join(METHODS))
    parser.add_argument('--variant', action='append', default=[], metavar='TITLE=JSON',
                        help='also run gradient_descent with these options, e.g. '
                             '\'no zoom={"zoom": 0, "rotate": 0}\' (repeatable)')
    parser.add_argument('--generation', type=zoo.generation, default=0,
                        help='the zoo\'s generation (visualize.zoo --generation)')
    parser.add_argument('--report-only', action='store_true',
                        help='only write ZOO.md from the zoo_<model>.json already in --out')
    args = parser.parse_args(argv)
    names = {'held-out': zoo.HELD_OUT, 'tune': zoo.TUNE,
             'all': zoo.TUNE + zoo.HELD_OUT}[args.split]
    if args.models:
        names = args.models.split(',')
    os.makedirs(args.out, exist_ok=True)
    results = []
    for name in names:
        path = os.path.join(args.out, 'zoo_%s.json' % name)
        if not args.report_only:
            def log(message):
                print(message, file=sys.stderr, flush=True)
            methods = args.methods.split(',') if args.methods else None
            variants = dict((v.split('=', 1)[0], json.loads(v.split('=', 1)[1]))
                            for v in args.variant)
            result = evaluate_model(name, args.device, args.seeds, args.zoo, log, methods,
                                    variants, args.generation)
            with open(path, 'w') as f:
                json.dump(result, f, indent=1)
        with open(path) as f:
            results.append(json.load(f))
    text = report(results, args.split if not args.models else ','.join(names))
    with open(os.path.join(args.out, 'ZOO.md'), 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
