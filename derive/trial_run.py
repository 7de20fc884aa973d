"""Run the rendered code before ``make derive`` writes it: code that cannot run is never written.

The rendered Python files are put in a scratch folder and imported from there; then every
layer they define runs forward and backward on a small tensor, in float32 and float64:

* every row of the ACTIVATIONS table as mlp.py uses it (``backward(grad, **saves)``);
* every other ``<layer>_forward`` function of layers.py (Linear, the losses, whatever is
  added), with its ``<layer>_backward*`` functions, each argument made from its name (SAMPLES);
* the standalone mlp.py: a tiny MLP, forward, both losses, backward.

A name that a function reads but nothing defines (a free SymPy symbol printed as code, such as
``torch.abs(q)``) is found before anything runs, in every branch. Failures are TrialError,
naming the layer, the function and the symbol; the caller then writes nothing.
"""
import builtins
import dis
import importlib.util
import inspect
import pathlib
import tempfile
import types

import torch

from derive import source_map

DTYPES = (torch.float32, torch.float64)
BATCH, IN, OUT = 3, 4, 2


class TrialError(Exception):
    pass


def _sample(dtype):
    """Arguments by parameter name (the names derive's printers use)."""
    x = torch.linspace(-2.5, 3.0, BATCH * IN, dtype=dtype).view(BATCH, IN)
    return {
        "input": x,
        "weight": torch.linspace(-1.0, 1.0, OUT * IN, dtype=dtype).view(OUT, IN),
        "bias": torch.linspace(-0.5, 0.5, OUT, dtype=dtype),
        "target": torch.linspace(0.0, 1.0, BATCH * IN, dtype=dtype).view(BATCH, IN),
        # a loss's input is a probability (BCE's logs need (0, 1))
        "probability": torch.sigmoid(x),
    }


def _free_names(function, namespace):
    """Global names the function (and the code nested in it) reads that the module does not
    define and that are not builtins."""
    free = set()
    codes = [function.__code__]
    while codes:
        code = codes.pop()
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                name = instruction.argval
                if name not in namespace and not hasattr(builtins, name):
                    free.add(name)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return sorted(free)


def _layer_of(function_name):
    for mark in ("_forward", "_backward"):
        if mark in function_name:
            return function_name.split(mark)[0]
    return function_name


def _check_names(module, file_name):
    for name, value in sorted(vars(module).items()):
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            free = _free_names(value, vars(module))
            if free:
                raise TrialError(
                    "{}: {} (layer {}) reads {}, defined nowhere: a free symbol in the layer's "
                    "SymPy expression? Every symbol must be the layer's input, result, grad or a "
                    "number.".format(file_name, name, _layer_of(name),
                                     ", ".join("`{}`".format(n) for n in free)))


def _import(path, name, sources):
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        where = "generated/{}:{}".format(path.name, error.lineno)
        origin = source_map.line_origins(path.read_text(), sources).get(error.lineno)
        if origin:
            where = "{}:{} (line {} of generated/{})".format(origin[0], origin[1], error.lineno, path.name)
        raise TrialError("{}: {}: {}".format(where, type(error).__name__, error.msg))
    except Exception as error:
        raise TrialError("generated/{} does not import: {}: {}".format(path.name, type(error).__name__, error))
    return module


def _expect(value, like, what):
    """value is a finite tensor of like's dtype and shape."""
    shape = tuple(like.shape)
    if not isinstance(value, torch.Tensor):
        raise TrialError("{} returned {}, not a tensor".format(what, type(value).__name__))
    if value.dtype != like.dtype:
        raise TrialError("{} returned dtype {} for {} inputs".format(what, value.dtype, like.dtype))
    if tuple(value.shape) != shape:
        raise TrialError("{} returned shape {}, expected {}".format(what, tuple(value.shape), shape))
    if not bool(torch.isfinite(value).all()):
        raise TrialError("{} returned NaN or inf on ordinary inputs: {}".format(what, value.tolist()))


def _call(function, what, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except TrialError:
        raise
    except Exception as error:
        hint = ""
        if isinstance(error, NameError):
            hint = " (`{}` is a free symbol of the layer's expression?)".format(getattr(error, "name", "?"))
        raise TrialError("{} raised {}: {}{}".format(what, type(error).__name__, error, hint))


def _run_activations(table, dtype):
    sample = _sample(dtype)
    for name, row in table.items():
        x = sample["input"]
        result = _call(row["forward"], "layer {}: forward ({})".format(name, dtype), x)
        _expect(result, x, "layer {}: forward ({})".format(name, dtype))
        values = {"input": x, "result": result}
        missing = [s for s in row["saves"] if s not in values]
        if missing:
            raise TrialError("layer {}: saves {}, which the forward pass does not have".format(name, missing))
        what = "layer {}: backward ({})".format(name, dtype)
        grad = torch.full_like(result, 0.75)
        _expect(_call(row["backward"], what, grad, **{s: values[s] for s in row["saves"]}), x, what)


def _arguments(function, values, what):
    kwargs = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in values:
            kwargs[parameter.name] = values[parameter.name]
        elif parameter.default is inspect.Parameter.empty:
            raise TrialError("{}: no sample value for its parameter `{}`; add one to "
                             "derive/trial_run.py".format(what, parameter.name))
    return kwargs


def _run_other_layers(module, skip, dtype):
    namespace = vars(module)
    for name in sorted(namespace):
        if not name.endswith("_forward") or not isinstance(namespace[name], types.FunctionType):
            continue
        layer = name[: -len("_forward")]
        if layer in skip:
            continue
        values = dict(_sample(dtype))
        if "target" in inspect.signature(namespace[name]).parameters:
            values["input"] = values["probability"]
        what = "layer {}: {} ({})".format(layer, name, dtype)
        result = _call(namespace[name], what, **_arguments(namespace[name], values, what))
        if not isinstance(result, torch.Tensor) or not bool(torch.isfinite(result).all()):
            raise TrialError("{} returned {} on ordinary inputs".format(what, result))
        values["result"] = result
        values["grad"] = torch.full_like(result, 0.75)
        for backward in sorted(n for n in namespace if n.startswith(layer + "_backward")):
            what = "layer {}: {} ({})".format(layer, backward, dtype)
            value = _call(namespace[backward], what, **_arguments(namespace[backward], values, what))
            with_respect_to = backward[len(layer + "_backward_"):] or "input"
            _expect(value, values.get(with_respect_to, values["input"]), what)


def _run_standalone(module, dtype):
    what = "generated/mlp_standalone.py (the zip's mlp.py), {}".format(dtype)
    torch.manual_seed(0)
    net = _call(module.MLP, what + ": MLP(...)", IN, 3, "relu", 3, OUT, "sigmoid")
    net.parameters = {k: v.to(dtype) for k, v in net.parameters.items()}
    y_hat = _call(net.forward, what + ": forward", _sample(dtype)["input"])
    for loss in ("mse_loss", "bce_loss"):
        returned = _call(getattr(module, loss), what + ": " + loss, torch.full_like(y_hat, 0.5), y_hat)
        if not (isinstance(returned, tuple) and len(returned) == 2):
            raise TrialError("{}: {} returned {!r}, expected (J, dJdy_hat)".format(what, loss, returned))
        J, dJdy_hat = returned
        _expect(dJdy_hat, y_hat, "{}: {}'s dJdy_hat".format(what, loss))
        _call(net.backward, what + ": backward after " + loss, dJdy_hat)
        for key, grad in net.grads.items():  # dJdW1 has W1's shape, ...
            _expect(grad, net.parameters[key[len("dJd"):]], "{}: grads['{}']".format(what, key))


def check(files, sources):
    """Imports the rendered Python files from a scratch folder and runs them (see above).

    files: {path relative to generated/: text}; sources: {name: text} of the files the
    standalone is built from (for the line of a syntax error). Raises TrialError."""
    with tempfile.TemporaryDirectory(prefix="derive-trial-") as scratch:
        folder = pathlib.Path(scratch) / "generated"
        for target, text in files.items():
            if target.endswith(".py") and "/" not in target:
                (folder / target).parent.mkdir(parents=True, exist_ok=True)
                (folder / target).write_text(text)
        layers = _import(folder / "layers.py", "_derive_trial_layers", sources)
        _check_names(layers, "generated/layers.py")
        standalone = _import(folder / "mlp_standalone.py", "_derive_trial_standalone", sources)
        _check_names(standalone, "generated/mlp_standalone.py")
        table = getattr(layers, "ACTIVATIONS", {})
        for dtype in DTYPES:
            _run_activations(table, dtype)
            _run_other_layers(layers, set(table), dtype)
            _run_standalone(standalone, dtype)
