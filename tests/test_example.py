"""The README's worked example (examples/spirals.py, `make example`) on a short run."""
import pytest
import torch

from examples import spirals


def test_manual_loss_curve_equals_autograds():
    report = spirals.run(steps=40, hidden=16, points_per_class=60)
    manual, autograd = report["manual"], report["autograd"]
    assert len(manual) == len(autograd) == 40
    assert report["gap"] <= spirals.CURVE_RTOL
    for a, b in zip(manual, autograd):
        assert a == pytest.approx(b, rel=spirals.CURVE_RTOL)
    assert manual[-1] < manual[0] - 0.05  # it trains


def test_curve_gap_sees_a_difference():
    assert spirals.curve_gap([1.0, 0.5], [1.0, 0.5 * (1 + 1e-6)]) > spirals.CURVE_RTOL


def test_spirals_are_balanced_one_hot_classes():
    x, y, labels = spirals.spirals(points_per_class=30)
    assert x.shape == (60, 2) and y.shape == (60, 2)
    assert torch.equal(y.argmax(1), labels) and labels.bincount().tolist() == [30, 30]


def test_main_prints_accuracy_and_writes_the_picture(tmp_path, capsys):
    assert spirals.main(["--steps", "30", "--hidden", "8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "final training accuracy" in out and "largest relative difference" in out
    picture = tmp_path / "spirals.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_get_a_sentence(capsys):
    with pytest.raises(SystemExit):
        spirals.main(["--steps", "0"])
    assert "--steps and --hidden must be positive" in capsys.readouterr().err
