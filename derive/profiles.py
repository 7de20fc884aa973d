"""Both numerics profiles of one catalogued activation, with their measured bits of error:
the last section of `python -m derive explain NAME` (the figures come from `make accuracy`'s
accuracy.json)."""
import json
import pathlib

from derive import activations, code

MEASURED = pathlib.Path(__file__).resolve().parent.parent / "accuracy.json"


def _bits(stats):
    return "max {max:.1f} (at x = {max_at:g}), p99 {p99:.2f}, mean {mean:.2f} bits".format(**stats)


def describe(name):
    if name not in activations.BY_NAME:
        raise SystemExit("explain: unknown activation {!r}; expected one of: {}".format(
            name, ", ".join(sorted(activations.BY_NAME))))
    a = activations.BY_NAME[name]
    measured = json.loads(MEASURED.read_text())["layers"].get(name) if MEASURED.exists() else None
    torch_profile = code.activation_context(a)
    accurate_profile = torch_profile["accurate"]
    lines = ["numerics=\"torch\" (MLP's default, as PyTorch computes it):",
             "  f' = {}".format(torch_profile["safe_math"])]
    lines += ["  rewrite: " + note for note in torch_profile["notes"]]
    lines += ["  backward: return " + torch_profile["backward"],
              "",
              "numerics=\"accurate\" ({}{}):".format(
                  accurate_profile["key"], ", the torch profile's own" if accurate_profile["same"] else ""),
              "  f' = {}".format(accurate_profile["math"])]
    lines += ["  rewrite: " + note for note in accurate_profile["notes"]]
    lines += ["  backward: " + line for line in accurate_profile["casts"]]
    lines += ["  backward: return " + accurate_profile["backward"], "",
              "bits of error against mpmath, max (where) / p99 / mean (make accuracy, ACCURACY.md):"]
    if measured is None:
        lines.append("  not measured yet: run `make accuracy`")
    else:
        for dtype, stats in measured["dtypes"].items():
            for source in ("torch", "accurate", "autograd"):
                lines.append("  {:9s} {} {}".format(source, dtype, _bits(stats[source])))
    return "\n".join(lines)
