"""`make derive` never writes code that cannot run (derive/trial_run.py), and writes atomically."""
import dataclasses
import os
import re

import pytest

from derive import activations, render, trial_run

FILES = render.render()
with open(os.path.join(str(render.ROOT), "mlp.py")) as _fh:
    MLP_SOURCE = _fh.read()
SOURCES = {"mlp.py": MLP_SOURCE, "generated/layers.py": FILES["layers.py"]}


def with_body(text, function, body):
    """text with the body of `def function(...)` replaced by one line."""
    pattern = re.compile(r"(def {}\(.*?\):\n)((?:    .*\n|\n(?=    ))+)".format(re.escape(function)))
    assert pattern.search(text), function
    return pattern.sub(lambda m: m.group(1) + "    " + body + "\n", text, count=1)


def trial(layers_text=None, standalone_text=None, sources=SOURCES):
    files = dict(FILES)
    if layers_text is not None:
        files["layers.py"] = layers_text
    if standalone_text is not None:
        files["mlp_standalone.py"] = standalone_text
    with pytest.raises(trial_run.TrialError) as error:
        trial_run.check(files, sources)
    return str(error.value)


def test_the_rendered_code_runs():
    trial_run.check(FILES, SOURCES)


@pytest.mark.parametrize("function, body, expected", [
    ("gelu_forward", "return input + torch.abs(q)", "gelu_forward (layer gelu) reads `q`"),
    # only in one branch: found without running it
    ("relu_backward", "return grad if result is None else grad * w", "relu_backward (layer relu) reads `w`"),
    ("relu_backward", "return grad.mm(result)", "layer relu: backward (torch.float32) raised RuntimeError"),
    ("identity_forward", "return torch.log(input)", "layer identity: forward (torch.float32) returned NaN"),
    ("tanh_forward", "return torch.tanh(input).float()",
     "layer tanh: forward (torch.float64) returned dtype torch.float32 for torch.float64 inputs"),
    ("sigmoid_backward", "return grad[:, :1]", "layer sigmoid: backward (torch.float32) returned shape (3, 1)"),
    ("mse_loss_backward", "return (input - target).sum()", "layer mse_loss: mse_loss_backward (torch.float32) "
                                                            "returned shape ()"),
    ("bce_loss_forward", "return torch.sum(torch.log(-input))", "layer bce_loss: bce_loss_forward"),
    ("linear_backward_weight", "return grad.t().mm(input).t()",
     "layer linear: linear_backward_weight (torch.float32) returned shape (4, 2), expected (2, 4)"),
])
def test_code_that_cannot_run_is_named(function, body, expected):
    message = trial(layers_text=with_body(FILES["layers.py"], function, body))
    assert expected in message, message


def test_a_layer_whose_backward_needs_an_unknown_argument_is_named():
    text = FILES["layers.py"].replace("def linear_backward_bias(grad):", "def linear_backward_bias(grad, scale):")
    assert "layer linear: linear_backward_bias (torch.float32): no sample value for its parameter `scale`" \
        in trial(layers_text=text)


def test_a_syntax_error_in_mlp_py_is_reported_at_its_line():
    anchor = "def mse_loss(y, y_hat):"
    broken_source = MLP_SOURCE.replace(anchor, "def mse_loss(y, y_hat)", 1)
    user_line = broken_source.splitlines().index("def mse_loss(y, y_hat)") + 1
    standalone = FILES["mlp_standalone.py"].replace(anchor, "def mse_loss(y, y_hat)", 1)
    zip_line = standalone.splitlines().index("def mse_loss(y, y_hat)") + 1
    message = trial(standalone_text=standalone, sources={"mlp.py": broken_source,
                                                         "generated/layers.py": FILES["layers.py"]})
    assert message.startswith("mlp.py:{} (line {} of generated/mlp_standalone.py): SyntaxError".format(
        user_line, zip_line)), message


def test_the_standalone_must_run_as_an_mlp():
    standalone = with_body(FILES["mlp_standalone.py"], "mse_loss", "return y.sum()")
    message = trial(standalone_text=standalone)
    assert "generated/mlp_standalone.py (the zip's mlp.py), torch.float32: mse_loss returned tensor(" in message
    assert "expected (J, dJdy_hat)" in message


def test_a_stray_symbol_leaves_generated_untouched(tmp_path, monkeypatch, capsys):
    # the case: `+ Abs(q)` in gelu's forward; SymPy's checks pass (d/dinput ignores q)
    out = tmp_path / "generated"
    render.write(FILES, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    rows = list(activations.ACTIVATIONS)
    i = [r.name for r in rows].index("gelu")
    rows[i] = dataclasses.replace(rows[i], definition=rows[i].definition + " + Abs(q)")
    monkeypatch.setattr(activations, "ACTIVATIONS", tuple(rows))
    monkeypatch.setattr(render, "GENERATED", out)
    assert render.main([]) == 1
    err = capsys.readouterr().err
    assert "nothing was written" in err and "layer gelu" in err and "`q`" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert render.main(["--check"]) == 1


def test_writes_are_atomic(tmp_path, monkeypatch):
    out = tmp_path / "generated"
    render.write(FILES, out)
    target = out / "layers.py"
    old = target.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(render.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render.write(dict(FILES, **{"layers.py": FILES["layers.py"] + "# changed\n"}), out)
    assert target.read_bytes() == old
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
