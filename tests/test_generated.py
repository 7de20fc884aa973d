"""generated/ is exactly what `make derive` writes, and the standalone submission file
behaves exactly as the repository's mlp.py."""
import ast
import pathlib
import sys

import pytest
import torch

import mlp
from derive import render
from generated import mlp_standalone as standalone

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_is_not_stale():
    files = render.render()
    stale = [t for t, text in files.items()
             if not (render.GENERATED / t).exists() or (render.GENERATED / t).read_text() != text]
    assert not stale, "generated/ is stale ({}): run `make derive` and commit generated/".format(", ".join(stale))


def test_every_generated_file_is_rendered_and_marked():
    rendered = set(render.render())
    on_disk = {str(p.relative_to(render.GENERATED)) for p in render.GENERATED.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk == rendered, "files in generated/ that `make derive` does not write: {}".format(on_disk - rendered)
    for target in rendered:
        first = (render.GENERATED / target).read_text().splitlines()[0]
        assert "@generated" in first and "make derive" in first and "templates/" in first, target


def test_rendering_twice_gives_the_same_bytes():
    assert render.render() == render.render()


def test_standalone_imports_only_torch_and_the_standard_library():
    tree = ast.parse((ROOT / "generated" / "mlp_standalone.py").read_text(), feature_version=(3, 7))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"torch"}


@pytest.mark.parametrize("f,g,loss", [("relu", "identity", "mse_loss"), ("sigmoid", "sigmoid", "bce_loss"),
                                      ("gelu", "tanh", "mse_loss"), ("softplus", "leaky_relu", "mse_loss")])
def test_standalone_behaves_exactly_as_mlp(f, g, loss):
    outputs = []
    for module in (mlp, standalone):
        torch.manual_seed(5)
        net = module.MLP(4, 6, f, 6, 3, g)
        x = torch.randn(8, 4)
        y = (torch.rand(8, 3) < 0.5) * 1.0
        y_hat = net.forward(x)
        J, dJdy_hat = getattr(module, loss)(y, y_hat)
        net.backward(dJdy_hat)
        outputs.append([y_hat, J, dJdy_hat] + [net.grads[k] for k in sorted(net.grads)])
    for ours, theirs in zip(*outputs):
        assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match="expected one of"):
        standalone.MLP(1, 1, "swish", 1, 1, "relu")


def test_standalone_defines_every_name_mlp_imports_from_the_generated_code():
    """mlp.py names what it uses from generated.layers; the standalone file inlines that
    code in place of the import (found with ast), so each name is defined there."""
    names = render._standalone_context({})["inlined_names"]
    assert "linear_forward" in names and "ACTIVATIONS" in names
    tree = ast.parse((ROOT / "generated" / "mlp_standalone.py").read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert set(names) <= defined, set(names) - defined


@pytest.mark.parametrize("name", sorted(mlp.ACTIVATIONS))
def test_standalone_accepts_every_catalogued_name(name):
    for module in (mlp, standalone):
        torch.manual_seed(2)
        net = module.MLP(3, 4, name, 4, 2, name)
        y_hat = net.forward(torch.randn(5, 3))
        net.backward(torch.ones_like(y_hat))
        assert torch.isfinite(net.grads["dJdW1"]).all()
