"""``python -m derive explain``: how the engine turns one activation into code, step by step.

    python -m derive explain mish
    python -m derive explain "x*tanh(log(1 + exp(x)))" --name mine
    python -m derive explain "Min(Max(0, x), 1)" --name clip01 --kink 0=0 --kink 1=0 --add

For a catalogued name or any SymPy expression in ``x`` it prints the forward, SymPy's raw
derivative, each rewrite applied on the way to the derivative the code evaluates (and why),
the LaTeX, the torch forward and backward that ``make derive`` would generate, and a check of
that code against autograd over a sweep with extremes (PyTorch's own function where the row
names one, else autograd through the printed forward). ``--add`` writes the row into
derive/activations.py; ``make derive`` then generates its code like any other row's.
"""
import argparse
import ast
import os
import pathlib
import re
import sys
import tempfile

import sympy as sp

from derive import activations, rewrites, vector_layers
from derive.activations import X, Activation
from derive.code import plain, printed
from derive.symbols import input

CATALOGUE = pathlib.Path(activations.__file__)
REL_FLOOR = 1e-6  # the relative difference is reported where autograd's value is at least this


class Refusal(Exception):
    """What is wrong with the user's request, as one sentence."""


def _pairs(items, what):
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise Refusal("{} {!r} must be written KEY=VALUE".format(what, item))
        out[key.strip()] = value.strip()
    return out


def row_for(args):
    """The catalogue's row for a name, or a new row for an expression."""
    if args.target in activations.BY_NAME and not (args.param or args.kink or args.at_nan):
        return activations.BY_NAME[args.target], True
    name = args.name or "custom"
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise Refusal("--name {!r} must be a lower-case Python identifier (it names generated functions)".format(name))
    parameters = _pairs(args.param, "--param")
    try:
        expr = activations.parse(args.target, parameters)
    except ValueError as error:
        raise Refusal(str(error))
    others = sorted(str(s) for s in expr.free_symbols - {input} - {sp.Symbol(p, real=True) for p in parameters})
    if others:
        raise Refusal("{!r} has a symbol other than x ({}): write the activation in x alone, or give a "
                      "value with --param {}=VALUE".format(args.target, ", ".join(others), others[0]))
    row = Activation(name, args.target, args.latex or r"\operatorname{{{}}}".format(name.replace("_", r"\_")),
                     parameters=parameters, kinks=_pairs(args.kink, "--kink"), at_nan=args.at_nan,
                     rewrites=(rewrites.IN_TERMS_OF_RESULT,) if args.in_terms_of_result else (),
                     unbounded=_unbounded(expr.subs(row_defaults(parameters))))
    return row, False


def row_defaults(parameters):
    return {sp.Symbol(p, real=True): activations.parse(v) for p, v in parameters.items()}


def _unbounded(forward):
    try:
        return any(abs(float(forward.subs(input, v))) > 1e5 for v in (-10**6, 10**6))
    except (TypeError, ValueError, OverflowError):
        return True


def derive(row):
    """Every piece explain prints, or a Refusal saying which step failed."""
    raw = row.raw_derivative
    if raw.has(sp.Derivative, sp.Subs) or any(isinstance(f, sp.core.function.AppliedUndef)
                                               for f in row.forward.atoms(sp.Function)):
        raise Refusal("SymPy cannot differentiate {} (it returns {})".format(row.definition, raw))
    try:
        stages = row.stages
        forward_code, backward_code = printed(row.safe_forward), printed(row.vjp)
    except rewrites.KinkError as error:
        message = str(error).replace("input = ", "x = ").replace(": add PyTorch's value to the row's kinks", "")
        raise Refusal("{}: state PyTorch's value with --kink POINT=VALUE".format(message))
    except (NotImplementedError, ValueError) as error:
        raise Refusal("cannot generate torch code for {}: {}".format(row.definition, error))
    return {"raw": raw, "stages": stages, "forward": forward_code, "backward": backward_code}


# -- the check against autograd ----------------------------------------------------------------
def _compile(row, forward_code, backward_code):
    import torch
    import torch.nn.functional as F
    namespace = {"torch": torch, "F": F}
    exec("def forward(input):\n    return {}\n\n"
         "def backward(grad, input=None, result=None):\n    return {}\n".format(forward_code, backward_code),
         namespace)
    return namespace["forward"], namespace["backward"]


def sweep_points(row):
    """A grid on [-10, 10], the extremes, the row's kinks and the floats beside them."""
    points = [k / 100 for k in range(-1000, 1001)] + [s * v for v in (1e-7, 1.0, 20.0, 88.8, 1e3, 1e4) for s in (1, -1)]
    points += [-0.0] + [float(p) for p in row.kink_values]
    return sorted(set(points))


def check(row, forward_code, backward_code):
    """[(dtype, what, max abs diff, max rel diff, finite where autograd is)] and the reference."""
    import torch
    import torch.nn.functional as F
    forward, backward = _compile(row, forward_code, backward_code)
    if row.reference:
        code = compile(row.reference, "<reference>", "eval")
        reference, label = (lambda z: eval(code, {"torch": torch, "F": F, "input": z})), row.reference
    else:
        reference, label = forward, "autograd through the printed forward (torch has no function for it)"
    rows = []
    for dtype in (torch.float32, torch.float64):
        z = torch.tensor(sweep_points(row), dtype=dtype)
        z = torch.cat([z, torch.nextafter(z, z + 1), torch.nextafter(z, z - 1)])
        grad = torch.ones_like(z)
        ours_forward = forward(z)
        ours = backward(grad, **{k: {"input": z, "result": ours_forward}[k] for k in row.saves})
        leaf = z.clone().requires_grad_()
        with torch.enable_grad():
            theirs_forward = reference(leaf)
            theirs_forward.backward(grad)
        for what, a, b in (("forward", ours_forward, theirs_forward.detach()), ("backward", ours, leaf.grad)):
            finite = bool((torch.isfinite(a) | ~torch.isfinite(b)).all())
            both = torch.isfinite(a) & torch.isfinite(b)
            diff = (a[both].double() - b[both].double()).abs()
            sized = b[both].double().abs() >= REL_FLOOR  # relative error means little near 0
            relative = diff[sized] / b[both].double().abs()[sized]
            rows.append((str(dtype).replace("torch.", ""), what, float(diff.max()) if diff.numel() else 0.0,
                         float(relative.max()) if relative.numel() else 0.0, finite))
    return rows, label


# -- printing -----------------------------------------------------------------------------------
def _in_x(expr):
    return expr.subs(input, X)


def report(row, known, derived, out=sys.stdout, run_check=True):
    from derive.latex_printer import latex
    w = lambda text="": print(text, file=out)
    w("{} ({}): f(x) = {}".format(row.name, "catalogue" if known else "not in the catalogue", row.definition))
    if row.parameters:
        w("  parameters (PyTorch's defaults): " + ", ".join("{} = {}".format(k, v) for k, v in row.parameters.items()))
    if row.kinks:
        w("  kinks (f' there, as PyTorch): " + ", ".join("f'({}) = {}".format(k, v) for k, v in row.kinks.items()))
    if row.at_nan is not None:
        w("  at a NaN input: f'(nan) = {}".format(row.at_nan))
    w()
    w("forward:        result = " + plain(_in_x(row.forward)))
    for r, after in rewrites.steps(row.forward, row.forward_rewrites + rewrites.BEFORE_PRINTING, row):
        w("  rewrite {}: {}".format(r.name, r.note(row)))
        w("    -> " + plain(_in_x(after)))
    w("f'(x), raw:     " + plain(_in_x(derived["raw"])) + "   (sympy.diff)")
    before = derived["raw"]
    step = 0
    for r, after in list(derived["stages"]) + rewrites.stages(row.derivative, rewrites.BEFORE_PRINTING, row):
        if after == before:
            continue
        step += 1
        w("  {}. {}: {}".format(step, r.name, r.note(row)))
        w("     -> " + plain(_in_x(after)))
        before = after
    if not step:
        w("  (no rewrite needed: SymPy's form is evaluated as it is)")
    w("f'(x), evaluated: " + plain(_in_x(before)))
    w()
    w("LaTeX:  f(x) = " + latex(_in_x(row.forward)))
    w("        f'(x) = " + latex(_in_x(row.safe_derivative)))
    w()
    w("torch forward:   def {}_forward(input): return {}".format(row.name, derived["forward"]))
    w("torch backward:  def {}_backward(grad, input=None, result=None): return {}".format(
        row.name, derived["backward"]))
    w("                 (saves {} from the forward pass)".format(" and ".join(row.saves) or "nothing"))
    if not run_check:
        return True
    try:
        rows, label = check(row, derived["forward"], derived["backward"])
    except Exception as error:  # the reference itself may not run (an old torch lacks it)
        w("\ncheck against autograd: not run ({}: {})".format(type(error).__name__, error))
        return False
    w()
    w("check against autograd: {}".format(label))
    w("  {} points in [-1e4, 1e4] (a grid on [-10, 10], extremes, kinks and their neighbours)".format(
        3 * len(sweep_points(row))))
    w("  {:8} {:9} {:>12} {:>12}  {}".format("dtype", "", "max |diff|", "max rel*", "finite where autograd is"))
    for dtype, what, absolute, relative, finite in rows:
        w("  {:8} {:9} {:12.3g} {:12.3g}  {}".format(dtype, what, absolute, relative, "yes" if finite else "NO"))
    w("  * relative to autograd's value where that is at least {:g} in magnitude".format(REL_FLOOR))
    return all(r[4] for r in rows)


# -- --add ---------------------------------------------------------------------------------------
def row_source(row):
    fields = [repr(row.name), repr(row.definition), "r" + repr(row.latex) if "\\" in row.latex else repr(row.latex)]
    for key in ("parameters", "kinks"):
        if getattr(row, key):
            fields.append("{}={!r}".format(key, dict(getattr(row, key))))
    if row.at_nan is not None:
        fields.append("at_nan={!r}".format(row.at_nan))
    if row.rewrites:
        fields.append("rewrites=(IN_TERMS_OF_RESULT,)")
    if row.unbounded:
        fields.append("unbounded=True")
    return "    Activation({}),\n".format(", ".join(fields))


def add(row, catalogue=CATALOGUE):
    """Insert the row as the last entry of ACTIVATIONS in the catalogue file (found with
    ``ast``); written to a temporary file and renamed, so a failure leaves the file as it was."""
    source = catalogue.read_text()
    nodes = [n for n in ast.parse(source).body if isinstance(n, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "ACTIVATIONS" for t in n.targets)]
    if len(nodes) != 1 or not isinstance(nodes[0].value, ast.Tuple):
        raise Refusal("{} has no single `ACTIVATIONS = (...)` tuple to add to".format(catalogue))
    names = {e.args[0].value for e in nodes[0].value.elts
             if isinstance(e, ast.Call) and e.args and isinstance(e.args[0], ast.Constant)}
    if row.name in names:
        raise Refusal("{!r} is already in the catalogue; pick another --name".format(row.name))
    lines = source.splitlines(keepends=True)
    closing = nodes[0].end_lineno - 1  # the line of the tuple's ")"
    lines.insert(closing, row_source(row))
    text = "".join(lines)
    ast.parse(text)
    fd, tmp = tempfile.mkstemp(dir=str(catalogue.parent), prefix=".activations.", suffix=".py")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, str(catalogue))


def parser():
    p = argparse.ArgumentParser(prog="python -m derive explain", description=__doc__.splitlines()[0])
    p.add_argument("target", nargs="?", help="a catalogued name (e.g. mish) or an expression in x")
    p.add_argument("--name", help="the name of a new activation (default: custom)")
    p.add_argument("--latex", help="its LaTeX name (default: \\operatorname{NAME})")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="a parameter and its default")
    p.add_argument("--kink", action="append", metavar="X=VALUE", help="f' at a kink, as PyTorch gives it")
    p.add_argument("--at-nan", metavar="VALUE", help="f' at a NaN input (a number, or nan)")
    p.add_argument("--in-terms-of-result", action="store_true", help="write the backward in the forward's result")
    p.add_argument("--add", action="store_true", help="write the row into derive/activations.py")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with autograd")
    p.add_argument("--list", action="store_true", help="list the catalogue's names")
    return p


def main(argv=None, out=sys.stdout, catalogue=CATALOGUE):
    args = parser().parse_args(argv)
    if args.list:
        print(" ".join(a.name for a in activations.ACTIVATIONS + vector_layers.VECTOR_LAYERS), file=out)
        return 0
    if args.target in vector_layers.BY_NAME and not (args.param or args.kink or args.at_nan or args.add):
        # A vector layer (softmax, log_softmax): its Jacobian is not diagonal; its own report.
        from derive import explain_vector
        out.write(explain_vector.explain(args.target, check=not args.no_check))
        return 0
    if not args.target:
        print("python -m derive explain: give a catalogued name or an expression in x (--list names them)",
              file=sys.stderr)
        return 2
    try:
        row, known = row_for(args)
        derived = derive(row)
        if args.add and known:
            raise Refusal("{!r} is already in the catalogue; pick another --name".format(row.name))
        ok = report(row, known, derived, out=out, run_check=not args.no_check)
        if known:  # the catalogue's rows have both numerics profiles, measured
            from derive.profiles import describe
            print("\n" + describe(row.name), file=out)
        if args.add:
            if not ok:
                raise Refusal("not added: the check against autograd found values that are not finite where "
                              "autograd's are")
            add(row, catalogue)
            print("\nadded {!r} to {}; run `make derive` to generate its code".format(row.name, catalogue), file=out)
    except Refusal as refusal:
        print("python -m derive explain: {}".format(refusal), file=sys.stderr)
        return 2
    return 0
