"""Both numerics profiles of one activation, with their measured bits of error: what
`python -m derive explain NAME` prints (the figures come from `make accuracy`'s accuracy.json)."""
import json
import pathlib

import sympy as sp

from derive import accurate, activations, code
from derive.torch_printer import torch_code

MEASURED = pathlib.Path(__file__).resolve().parent.parent / "accuracy.json"


def _bits(stats):
    return "max {max:.1f} (at x = {max_at:g}), p99 {p99:.2f}, mean {mean:.2f} bits".format(**stats)


def describe(name):
    if name not in activations.BY_NAME:
        raise SystemExit("explain: unknown activation {!r}; expected one of: {}".format(
            name, ", ".join(sorted(activations.BY_NAME))))
    a = activations.BY_NAME[name]
    measured = json.loads(MEASURED.read_text())["layers"].get(name) if MEASURED.exists() else None
    chosen = accurate.chosen(a)
    casts, body = code.accurate_backward(chosen)
    lines = ["{}: result = {}".format(name, sp.sstr(a.forward)),
             "f' as SymPy derives it: {}".format(sp.sstr(a.raw_derivative)),
             "",
             "numerics=\"torch\" (default, as PyTorch computes it):",
             "  f' = {}".format(sp.sstr(a.derivative)),
             "  backward: return {}".format(torch_code(a.vjp)),
             "",
             "numerics=\"accurate\" ({}):".format(chosen.key),
             "  f' = {}".format(sp.sstr(chosen.derivative))]
    lines += ["  rewrite: " + accurate.BY_NAME[r].note for r in chosen.rewrites]
    lines += ["  evaluated in float64 and rounded once to the input's dtype"] if chosen.float64 else []
    lines += ["  backward: " + line for line in casts] + ["  backward: return " + body]
    lines += ["", "Bits of error against mpmath (make accuracy):"]
    if measured is None:
        lines.append("  not measured yet: run `make accuracy`")
    else:
        for dtype, stats in measured["dtypes"].items():
            for source in ("torch", "accurate", "autograd"):
                lines.append("  {} {:9s} {}".format(dtype, source, _bits(stats[source])))
    return "\n".join(lines)
