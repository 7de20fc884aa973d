"""`python -m derive explain`: every catalogued name, expressions outside the catalogue,
one-line refusals, and --add writing a row that then derives like any other."""
import importlib.util
import io
import re
import shutil

import pytest
import sympy as sp

from derive import activations, explain, vector_layers
from derive.symbols import input as z
from generated import layers

OUTSIDE = [  # (arguments, what the check compares with)
    (["x*tanh(log(1 + exp(x)))", "--name", "mine"], "autograd through the printed forward"),
    (["x**3/(1 + x**2)", "--name", "cubic_ratio"], "autograd through the printed forward"),
    (["Min(Max(0, x), 1)", "--name", "clip01", "--kink", "0=0", "--kink", "1=0", "--at-nan", "1"],
     "autograd through the printed forward"),
]


def _run(argv, **kwargs):
    out = io.StringIO()
    code = explain.main(argv, out=out, **kwargs)
    return code, out.getvalue()


def _check_lines(text):
    lines = [line.split() for line in text.splitlines() if line.strip().startswith(("float32", "float64"))]
    return {(p[0], p[1]): (float(p[2]), float(p[3]), p[4]) for p in lines}


@pytest.mark.parametrize("name", [a.name for a in activations.ACTIVATIONS])
def test_explains_every_catalogued_name(name):
    code, text = _run([name])
    assert code == 0
    # The code it shows is the code make derive generated.
    source = open(layers.__file__).read()
    forward = text.split("def {}_forward(input): return ".format(name))[1].splitlines()[0]
    backward = text.split("def {}_backward(grad, input=None, result=None): return ".format(name))[1].splitlines()[0]
    assert "    return {}\n".format(forward) in source.split("def {}_forward".format(name))[1].split("def ")[0]
    assert "    return {}\n".format(backward) in source.split("def {}_backward".format(name))[1].split("def ")[0]
    assert "f'(x), raw:" in text and "LaTeX:" in text
    checks = _check_lines(text)
    assert len(checks) == 4, text
    for (dtype, what), (absolute, relative, finite) in checks.items():
        assert finite == "yes", (dtype, what)
        # float64: 1e-8, since PyTorch's own float64 hardsigmoid backward multiplies by a
        # float32 1/6 (5e-9 off); every other row agrees to 1e-12 (test_layers is stricter).
        assert absolute <= (1e-4 if dtype == "float32" else 1e-8), (name, dtype, what, absolute)


@pytest.mark.parametrize("argv,reference", OUTSIDE, ids=[a[0] for a, _ in OUTSIDE])
def test_explains_expressions_outside_the_catalogue(argv, reference):
    code, text = _run(argv)
    assert code == 0, text
    assert "not in the catalogue" in text and reference in text
    for (dtype, what), (absolute, relative, finite) in _check_lines(text).items():
        assert finite == "yes", (dtype, what)
        assert absolute <= (1e-4 if dtype == "float32" else 1e-12), (argv, dtype, what, absolute)


def test_a_kink_stated_on_the_command_line_is_used():
    _, text = _run(["Min(Max(0, x), 1)", "--name", "clip01", "--kink", "0=1", "--kink", "1=0", "--at-nan", "1",
                    "--no-check"])
    assert "f'(0) = 1" in text and "input < 0" in text.split("torch backward:")[1]


REFUSALS = [
    (["x*y"], r"symbol other than x \(y\)"),
    (["foo(x)"], "cannot differentiate"),
    (["x +* 2"], "cannot parse"),
    (["Max(0, x)"], "jumps at x = 0.*--kink"),
    (["x", "--name", "Bad-Name"], "identifier"),
    (["x", "--param", "alpha"], "KEY=VALUE"),
]


@pytest.mark.parametrize("argv,message", REFUSALS, ids=[a[0] for a, _ in REFUSALS])
def test_refuses_with_one_sentence(argv, message, capsys):
    code, text = _run(argv)
    err = capsys.readouterr().err
    assert code == 2 and text == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("python -m derive explain: ")
    assert re.search(message, err), err


def test_add_writes_a_row_that_derives_like_the_others(tmp_path):
    catalogue = tmp_path / "activations.py"
    shutil.copy(explain.CATALOGUE, catalogue)
    code, text = _run(["x*tanh(log(1 + exp(x)))", "--name", "mine", "--add", "--no-check"], catalogue=catalogue)
    assert code == 0 and "added 'mine'" in text
    spec = importlib.util.spec_from_file_location("added_catalogue", catalogue)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert [a.name for a in module.ACTIVATIONS][:-1] == [a.name for a in activations.ACTIVATIONS]
    mine = module.BY_NAME["mine"]
    assert mine.unbounded and sp.simplify(mine.forward - activations.BY_NAME["mish"].forward) == 0
    assert sp.simplify((mine.derivative - activations.BY_NAME["mish"].derivative).rewrite(sp.exp)) == 0
    # The same name again is refused, and the file is left as it was.
    before = catalogue.read_text()
    code, _ = _run(["x", "--name", "mine", "--add", "--no-check"], catalogue=catalogue)
    assert code == 2 and catalogue.read_text() == before


def test_add_keeps_kinks_and_parameters(tmp_path):
    catalogue = tmp_path / "activations.py"
    shutil.copy(explain.CATALOGUE, catalogue)
    argv = ["Min(Max(0, x), top)", "--name", "clip", "--param", "top=2", "--kink", "0=0", "--kink", "top=0",
            "--at-nan", "1", "--add", "--no-check"]
    assert _run(argv, catalogue=catalogue)[0] == 0
    spec = importlib.util.spec_from_file_location("added_catalogue2", catalogue)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    clip = module.BY_NAME["clip"]
    assert clip.derivative.subs(z, 2) == 0 and clip.derivative.subs(z, 1) == 1 and clip.derivative.subs(z, 0) == 0


def test_list_names_the_catalogue():
    code, text = _run(["--list"])
    assert code == 0 and text.split() == [a.name for a in activations.ACTIVATIONS + vector_layers.VECTOR_LAYERS]


README = explain.CATALOGUE.parent.parent / "README.md"


def test_readme_names_the_catalogue():
    section = README.read_text().split("## The catalogue")[1].split("(`python -m derive explain --list`)")[0]
    named = re.findall(r"`([a-z_0-9]+)`", section)
    assert named == [a.name for a in activations.ACTIVATIONS]


def test_readme_session_is_what_explain_prints():
    """The derivation part of the README's session, verbatim (the measured differences may
    vary in the last digits from one CPU to another)."""
    session = README.read_text().split("$ python -m derive explain hardswish\n")[1].split("```")[0]
    _, text = _run(["hardswish"])
    head = lambda t: t.split("check against autograd")[0]
    assert head(session) == head(text)
