"""The zoo of unseen classifiers and its report (visualize/zoo.py, visualize/zoo_eval.py), and
the training loop it shares with the bundled classifiers (visualize/fit.py, visualize/train.py)."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gd  # noqa: E402
from visualize import train, zoo, zoo_eval  # noqa: E402


def test_halves_are_disjoint_and_cover_the_families():
    assert not set(zoo.TUNE) & set(zoo.HELD_OUT)
    assert set(zoo.TUNE) | set(zoo.HELD_OUT) == set(zoo.FAMILIES)
    assert len(zoo.FAMILIES) >= 6


@pytest.mark.parametrize('name', sorted(zoo.FAMILIES))
def test_every_family_runs_one_image_in_both_modes(name):
    # the race needs training mode to be possible on one image at the family's size
    torch.manual_seed(0)
    model = zoo.FAMILIES[name][0](8)
    size = zoo.FAMILIES[name][2]
    image = torch.rand(1, 3, size, size)
    for mode in ('train', 'eval'):
        gd._set_mode(model, mode)
        with torch.no_grad(), gd._ProtectedBuffers(model):
            assert model(zoo.prepare(name, image)).shape == (1, 8)
    dependent = {'vgg_bn', 'resnet', 'raw_bn', 'dropout_cnn'}
    assert gd._mode_dependent(model) == (name in dependent)


def test_training_is_deterministic():
    first, _ = zoo.train('plain', 'model', epochs=1, count=48, batch=24)
    again, _ = zoo.train('plain', 'model', epochs=1, count=48, batch=24)
    twin, _ = zoo.train('plain', 'judge', epochs=1, count=48, batch=24)
    a, b, c = (m.state_dict() for m in (first, again, twin))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a), 'the judge must be trained apart'


def test_bundled_training_is_deterministic():
    # the committed assets/gd_small*.pt are reproducible only if every draw comes in order
    logs = []
    first, accuracy = train.train_one(3, 1, 64, batch=32, log=logs.append)
    again, _ = train.train_one(3, 1, 64, batch=32, log=lambda line: None)
    other, _ = train.train_one(4, 1, 64, batch=32, log=lambda line: None)
    a, b, c = (m.state_dict() for m in (first, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert len(logs) == 1 and logs[0].startswith('  seed 3 epoch 1: train loss ')
    assert 0.0 <= accuracy <= 1.0


def test_a_generation_is_a_fresh_zoo(tmp_path, capsys):
    # a fresh held-out half: other seeds and other drawings, cached beside generation 0
    first, _ = zoo.train('plain', 'model', epochs=1, count=48, batch=24)
    fresh, _ = zoo.train('plain', 'model', epochs=1, count=48, batch=24, generation=1)
    a, b = first.state_dict(), fresh.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)
    assert zoo._seed('plain', 'model', 1) not in {zoo._seed(n, r) for n in zoo.FAMILIES
                                                  for r in zoo.ROLES}
    assert zoo.path_of(str(tmp_path), 'plain', 'model') != zoo.path_of(str(tmp_path), 'plain',
                                                                        'model', 1)
    # both commands refuse a generation that is not a count, with argparse's sentence (status 2)
    for main in (zoo.main, zoo_eval.main):
        for bad in ('-1', 'two'):
            with pytest.raises(SystemExit) as exit_info:
                main(['--generation', bad, '--out', str(tmp_path)])
            assert exit_info.value.code == 2
            assert "--generation: must be 0 or more" in capsys.readouterr().err
    assert not os.listdir(str(tmp_path))


def test_report_marks_methods_that_could_not_run():
    def cell(graded, transfer=0.5, mode='eval'):
        return {'graded': graded, 'transfer': transfer, 'mode': mode, 'seconds': 2.56,
                'estimates': {'eval': graded, 'train': None}}
    row = {'model': 'resnet', 'label': 0, 'class': 'disc', 'seed': 0}
    row.update({m: cell(0.9) for m in zoo_eval.METHODS})
    row['auto']['final_blur'] = 0.75
    row['auto']['normalization'] = 'none'
    row['auto']['rotation'] = {'kept': True, 'angles': [0, 30], 'probabilities': [0.9, 0.9]}
    row['train'] = row['adam train'] = {'graded': None, 'transfer': None, 'mode': None,
                                        'seconds': None, 'error': 'x'}
    text = zoo_eval.report([{'model': 'resnet', 'accuracy': 0.9, 'judge_accuracy': 0.8,
                             'rows': [row], 'device': 'cpu', 'generation': 1}], 'held-out')
    assert 'zoo generation 1' in text
    assert '| train (could not run on 1 images) | n/a | n/a |' in text
    assert '| auto | 0.900 | 0.900 | 0.500 | 0.500 | 0.0100 |' in text
    assert '| bound: better adam mode per image | 0.900 | 0.900 |' in text
    assert '| resnet | disc | 0 | 0.900 / - | eval | kept | 0.75 | 0.900 | 0.500 |' in text
    # chose training mode 0, did not normalize 1, kept the rotation 1
    assert text.count('| 0 of 1 | 1 of 1 | 1 of 1 |') == 1


def test_report_sets_each_method_beside_auto_image_by_image():
    def row(seed, auto, variant):
        r = {'model': 'plain', 'label': 0, 'class': 'disc', 'seed': seed}
        for method, transfer in (('auto', auto), ('wider', variant)):
            r[method] = {'graded': 0.9, 'transfer': transfer, 'mode': 'eval', 'seconds': 1.0}
        return r
    # differences +0.4 and -0.2: mean +0.1, standard error 0.3, one better and one worse
    rows = [row(0, 0.2, 0.6), row(1, 0.4, 0.2)]
    assert zoo_eval.paired(rows, 'wider', 'transfer') == pytest.approx((0.1, 0.3, 1, 1))
    text = zoo_eval.report([{'model': 'plain', 'accuracy': 0.9, 'judge_accuracy': 0.8,
                             'rows': rows, 'device': 'cpu', 'generation': 0}], 'tune')
    assert '| wider | +0.000 +- 0.000 | +0.100 +- 0.300 | 1 / 1 |' in text
    # one image has no error to give
    assert zoo_eval.paired(rows[:1], 'wider', 'transfer') is None


def test_report_gives_the_transfer_means_error_over_models():
    def result(model, transfers):
        rows = [{'model': model, 'label': 0, 'class': 'disc', 'seed': s,
                 'auto': {'graded': 0.9, 'transfer': t, 'mode': 'eval', 'seconds': 1.0}}
                for s, t in enumerate(transfers)]
        return {'model': model, 'accuracy': 0.9, 'judge_accuracy': 0.8, 'rows': rows,
                'device': 'cpu', 'generation': 4}
    # per-model means 0.2, 0.5, 0.8: their standard deviation 0.3, over sqrt(3) models
    results = [result('a', [0.0, 0.4]), result('b', [0.5, 0.5]), result('c', [1.0, 0.6])]
    assert zoo_eval.over_models(results, 'auto') == pytest.approx(0.3 / 3 ** 0.5)
    text = zoo_eval.report(results, 'held-out')
    assert '| auto | 0.900 | 0.900 | 0.500 | 0.000 | 0.0039 | +- 0.173 |' in text
    assert 'another draw of 3 models' in text
    assert '| a | disc | 0 | - / - | eval | - | - | 0.900 | 0.000 |' in text  # runs before final_blur
    assert text.count('| 0 of 2 | - |') == 3  # runs before option normalization: not known
    assert zoo_eval.over_models(results[:1], 'auto') is None  # one model: no spread
