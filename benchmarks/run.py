"""Runs every benchmark, prints the table and writes BENCHMARKS.md at the repository root."""
import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch
from torch.utils import benchmark

from benchmarks import memory, paths, profiles

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "BENCHMARKS.md"

# name -> (batch, in_features, hidden, out_features)
SIZES = {
    "homework": (10, 2, 20, 5),
    "mid": (256, 784, 256, 10),
    "large": (1024, 1024, 1024, 1000),
}
# Seconds of timing per measurement and round; rounds are interleaved across the methods, so
# slow drifts of the machine hit every method alike, and their blocks are merged.
MIN_RUN_TIME = {"homework": 0.4, "mid": 0.4, "large": 1.2}
ROUNDS = 3
# Targets, as median ratios (<=).
GENERATED_VS_AUTOGRAD = {"homework": 0.40, "mid": 0.95, "large": 1.00}
# Where one pair's target differs from its size's: (size, pair) -> limit.
GENERATED_VS_AUTOGRAD_PAIR = {("mid", ("relu", "log_softmax", "nll")): 1.00}
GENERATED_VS_FLOOR = {"large": 1.10}
DERIVE_SECONDS = 3.0
GD_VS_PLAIN = 1.15

METHODS = ("generated", "autograd", "torch.func", "floor")
_STEPS = {"generated": paths.generated_step, "autograd": paths.autograd_step,
          "torch.func": paths.func_step, "floor": paths.floor_step}


@dataclass
class Target:
    what: str
    measured: str
    limit: str
    met: object  # True, False, or None when it could not be measured

    @property
    def status(self):
        return {True: "met", False: "missed", None: "not measured"}[self.met]


@dataclass
class Results:
    timing: list = field(default_factory=list)  # dicts, one per size x pair
    memory: list = field(default_factory=list)
    derive: dict = field(default_factory=dict)
    derive_checked: dict = field(default_factory=dict)  # the same, with the derivation checks first
    gd: dict = field(default_factory=dict)  # bundled SmallNet, 48 px
    gd_vgg: dict = field(default_factory=dict)  # vgg13_bn (random weights), 224 px
    profiles: list = field(default_factory=list)  # numerics="accurate" vs "torch", mid size
    targets: list = field(default_factory=list)
    compare: str = ""


def _fmt_time(seconds):
    if seconds is None:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return "{:.3g} {}".format(seconds / scale, unit)
    return "{:.3g} ns".format(seconds * 1e9)


def _fmt_bytes(n):
    for unit, scale in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return "{:.2f} {}".format(n / scale, unit)
    return "{} B".format(n)


def _mark(met):
    return {True: "met", False: "MISSED", None: "n/a"}[met]


# ---------------------------------------------------------------------------------------------
# MLP timing and memory
# ---------------------------------------------------------------------------------------------

def _timer(step, size, shape, pair, method, threads):
    f, g, loss = pair
    return benchmark.Timer(
        stmt="step()", globals={"step": step}, num_threads=threads,
        label="MLP forward + loss + backward (float32)",
        sub_label="{} {} {}/{} {}".format(size, shape, f, g, loss.upper()),
        description=method)


def _autograd_limit(size, pair):
    return GENERATED_VS_AUTOGRAD_PAIR.get((size, tuple(pair)), GENERATED_VS_AUTOGRAD.get(size))


def time_mlp(sizes=SIZES, pairs=paths.PAIRS, min_run_time=MIN_RUN_TIME, rounds=ROUNDS,
             threads=None, check=True, extra=None):
    """Median seconds per step for every size x pair x method; returns (rows, measurements).
    With ``check``, the three paths' gradients are first compared (same weights, same data)."""
    threads = threads or torch.get_num_threads()
    timers = {}
    for size, shape in sizes.items():
        for pair in paths.pairs_at(size, pairs, extra):
            case = paths.make_case(shape, *pair)
            if check:
                _check_gradients(case)
            for method in METHODS:
                if method == "floor" and pair != pairs[0]:
                    continue  # the floor depends on the shape only
                step = _STEPS[method](case)
                for _ in range(3):  # warm-up: allocator, lazy init
                    step()
                timers[size, pair, method] = _timer(step, size, shape, pair, method, threads)
    measured = {key: [] for key in timers}
    for _ in range(rounds):
        for key, timer in timers.items():
            measured[key].append(timer.blocked_autorange(min_run_time=min_run_time[key[0]]))
    merged = {key: benchmark.Measurement.merge(ms)[0] for key, ms in measured.items()}
    rows = []
    for size, shape in sizes.items():
        floor = merged[size, pairs[0], "floor"].median
        for pair in paths.pairs_at(size, pairs, extra):
            t = {m: merged[size, pair, m].median for m in METHODS if m != "floor"}
            t["floor"] = floor
            rows.append({
                "size": size, "shape": shape, "pair": pair, "seconds": t,
                "gen/autograd": t["generated"] / t["autograd"],
                "gen/floor": t["generated"] / floor,
                "func/autograd": t["torch.func"] / t["autograd"],
            })
    return rows, list(merged.values())


def _check_gradients(case):
    grads = paths.gradients(case)
    ref = grads["autograd"]
    for name in ("generated", "func"):
        for a, b in zip(grads[name], ref):
            if not torch.allclose(a, b, rtol=1e-3, atol=1e-5):
                raise AssertionError("{} gradients differ from autograd's for {} {}".format(
                    name, case.shape, (case.f, case.g, case.loss)))


def measure_memory(sizes=SIZES, pairs=paths.PAIRS, extra=None):
    rows = []
    for size, shape in sizes.items():
        for pair in paths.pairs_at(size, pairs, extra):
            case = paths.make_case(shape, *pair)
            kept = memory.generated_kept_bytes(case.net, case.x)
            saved = memory.autograd_kept_bytes(case.seq, case.x)
            rows.append({"size": size, "shape": shape, "pair": pair,
                         "generated": kept, "autograd": saved})
    return rows


# ---------------------------------------------------------------------------------------------
# make derive, gd.py
# ---------------------------------------------------------------------------------------------

# What `make derive` runs when a file is about to change, before the trial run (which
# imports torch): the derivation checks, then the same render and comparison.
_WITH_CHECKS = "import sys; from derive import checks, render; checks.run_all(); sys.exit(render.main(['--check']))"


def time_derive(runs=3, code=None):
    """Wall time of a cold `python -m derive --check` subprocess (imports included); with
    ``code``, of `python -c code` instead."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "derive", "--check"] if code is None else [sys.executable, "-c", code]
    times, codes, last_error = [], [], ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=str(ROOT), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        times.append(time.perf_counter() - start)
        codes.append(proc.returncode)
        if proc.returncode:
            lines = proc.stderr.strip().splitlines()
            last_error = lines[-1] if lines else "exit code {}".format(proc.returncode)
    return {"median": statistics.median(times), "times": times, "codes": codes, "error": last_error}


def _time_gd_on(gd, model, size, iterations, repeats, plain_blocks):
    """Median seconds per iteration of gd.gradient_descent and of one plain forward + backward.

    plain_blocks: (min_run_time,) for blocked_autorange, or ("timeit", number) for models whose
    one call already takes a long time."""
    import numpy as np
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, size, size, generator=gen)

    def loss(out):
        return out[0, 0].mean()

    model.eval()
    x = image.clone().requires_grad_(True)

    def plain():
        torch.autograd.grad(loss(model(x)), x)

    flags = [p.requires_grad for p in model.parameters()]
    timer = benchmark.Timer(stmt="plain()", globals={"plain": plain}, num_threads=torch.get_num_threads())
    # the steps are timed with option final_blur off and option normalization fixed to what it
    # measures: final_blur's graded estimates (at most three forwards) and normalization's
    # BatchNorm probe (two forwards without gradients) come once per run and are no step (over
    # vgg13_bn's few iterations they would weigh on each step as they do not over a real run);
    # they are timed apart, as the difference of two runs
    # option rotate 'auto' (the rotation race: a second image shaped in the first two octaves,
    # and one probe of the rotated image at 12 angles) is part of the steps; each repeat also
    # times a run without it (rotate 0), so that its share can be told apart
    per_iteration, plain_runs, once_per_run, upright = [], [], [], []
    race = gd.DEFAULT_OPTIONS.get("rotate") == "auto"  # (an older gd.py has no race)
    try:
        np.random.seed(0)
        record = {}  # warm-up (every octave's size), and what option normalization measures
        gd.gradient_descent(image, model, loss, iterations=4, record=record)
        fixed = {"final_blur": (), "normalization": record.get("normalization", "auto")}
        for _ in range(repeats):  # interleaved, so that the load of the machine hits all alike
            start = time.perf_counter()
            gd.gradient_descent(image, model, loss, iterations=iterations, **fixed)
            steps = time.perf_counter() - start
            per_iteration.append(steps / iterations)
            start = time.perf_counter()
            gd.gradient_descent(image, model, loss, iterations=iterations)
            once_per_run.append(time.perf_counter() - start - steps)
            if race:
                start = time.perf_counter()
                gd.gradient_descent(image, model, loss, iterations=iterations, rotate=0, **fixed)
                upright.append((time.perf_counter() - start) / iterations)
            for p in model.parameters():  # as gradient_descent: the gradient of the image only
                p.requires_grad_(False)
            model.eval()
            if plain_blocks[0] == "timeit":
                plain_runs.append(timer.timeit(plain_blocks[1]))
            else:
                plain_runs.append(timer.blocked_autorange(min_run_time=plain_blocks[0] / repeats))
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)
    except Exception as error:
        return {"error": "gradient_descent failed: {}: {}".format(type(error).__name__, error)}
    m = benchmark.Measurement.merge(plain_runs)[0]
    return {"per_iteration": statistics.median(per_iteration), "plain": m.median,
            "size": size, "iterations": iterations, "repeats": repeats,
            "once_per_run": statistics.median(once_per_run),
            "without_race": statistics.median(upright) if upright else None}


def time_gd(iterations=256, repeats=3, min_run_time=1.0):
    """gd.gradient_descent's seconds per iteration against one plain forward + backward
    (gradient with respect to the image, model in eval mode) of the bundled model.

    Whole runs of the skeleton's default length (256 iterations, about a second each here): what
    a run does once (the octave changes, the mode race's decision, the class-weight probe) then
    weighs on each step as it does in a real run.  Over 24 iterations it weighed about ten times
    as much (the tenth session: 1.24x over 24 iterations, 1.06x-1.15x over 256)."""
    try:
        import gd
        model, meta = gd.load_bundled(device="cpu")
    except Exception as error:  # gd.py or its model missing or broken
        return {"error": "{}: {}".format(type(error).__name__, error)}
    return _time_gd_on(gd, model, meta["size"], iterations, repeats, (min_run_time,))


def time_gd_vgg(iterations=64, repeats=2, plain_number=2, size=224):
    """The same ratio on the model gd.main() uses by default, torchvision's vgg13_bn (random
    weights: `weights=None`, nothing is downloaded; the cost does not depend on the weights) at
    1x3x224x224, the homework grader's setting.  A quarter of a run: one VGG step takes a third
    of a second to a second here.  Over 9 iterations, as timed before the rotation race, its
    probe (12 forwards, once per run) weighed on each step 28 times as much as in a 256-step
    run; over 64 it weighs 4 times as much, about 2% of a step."""
    try:
        import gd
        from torchvision.models import vgg13_bn
        torch.manual_seed(0)
        try:
            model = vgg13_bn(weights=None)
        except TypeError:  # torchvision < 0.13
            model = vgg13_bn(pretrained=False)
    except Exception as error:
        return {"error": "{}: {}".format(type(error).__name__, error)}
    return _time_gd_on(gd, model, size, iterations, repeats, ("timeit", plain_number))


# ---------------------------------------------------------------------------------------------
# Targets and the report
# ---------------------------------------------------------------------------------------------

def targets(results):
    out = []
    for row in results.timing:
        pair = "{}/{} {}".format(*row["pair"][:2], row["pair"][2].upper())
        limit = _autograd_limit(row["size"], row["pair"])
        if limit is not None:
            out.append(Target("generated / autograd, {} {}".format(row["size"], pair),
                              "{:.3f}".format(row["gen/autograd"]), "<= {:.2f}".format(limit),
                              row["gen/autograd"] <= limit))
        limit = GENERATED_VS_FLOOR.get(row["size"])
        if limit is not None:
            out.append(Target("generated / floor, {} {}".format(row["size"], pair),
                              "{:.3f}".format(row["gen/floor"]), "<= {:.2f}".format(limit),
                              row["gen/floor"] <= limit))
    for row in results.memory:
        pair = "{}/{}".format(*row["pair"][:2])
        out.append(Target("kept bytes <= autograd's saved bytes, {} {}".format(row["size"], pair),
                          "{} vs {}".format(_fmt_bytes(row["generated"]), _fmt_bytes(row["autograd"])),
                          "<= 1.00x", row["generated"] <= row["autograd"]))
    for row in results.profiles:
        b = row["bytes"]
        out.append(Target("kept bytes <= autograd's saved bytes, numerics=\"accurate\", {} {}/identity".format(
            "mid", row["name"]), "{} vs {}".format(_fmt_bytes(b["accurate"]), _fmt_bytes(b["autograd"])),
            "<= 1.00x", b["accurate"] <= b["autograd"]))
    d = results.derive
    if d:
        ok = all(c == 0 for c in d["codes"])
        out.append(Target("`make derive` cold (python -m derive --check), median of {}".format(len(d["times"])),
                          "{:.2f} s".format(d["median"]) + ("" if ok else " (exit {})".format(d["codes"])),
                          "<= {:.1f} s".format(DERIVE_SECONDS),
                          (d["median"] <= DERIVE_SECONDS) if ok else None))
    for g, what in ((results.gd, "gd.py iteration / plain forward + backward, SmallNet 48 px"),
                    (results.gd_vgg, "gd.py iteration / plain forward + backward, vgg13_bn 224 px")):
        if not g:
            continue
        if "error" in g:
            out.append(Target(what, "not measured", "<= {:.2f}x".format(GD_VS_PLAIN), None))
        else:
            ratio = g["per_iteration"] / g["plain"]
            out.append(Target(what, "{:.2f}x".format(ratio), "<= {:.2f}x".format(GD_VS_PLAIN),
                              ratio <= GD_VS_PLAIN))
    return out


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = "load average {:.2f} at the end of the run".format(os.getloadavg()[0]) \
        if hasattr(os, "getloadavg") else "load average unknown"
    return ("{} ({} logical cores); torch {}, {} threads; Python {}; {}; {}".format(
        cpu, os.cpu_count(), torch.__version__, torch.get_num_threads(),
        platform.python_version(), platform.platform(), load))


def timing_table(rows):
    lines = ["| size (batch, in, hidden, out) | f/g, loss | generated | autograd | torch.func | "
             "floor (5 mm) | generated / autograd | target | generated / floor | target | "
             "torch.func / autograd |",
             "|---|---|--:|--:|--:|--:|--:|---|--:|---|--:|"]
    for r in rows:
        t = r["seconds"]
        lim_a = _autograd_limit(r["size"], r["pair"])
        lim_f = GENERATED_VS_FLOOR.get(r["size"])
        lines.append("| {} {} | {}/{} {} | {} | {} | {} | {} | {:.3f} | {} | {:.3f} | {} | {:.3f} |".format(
            r["size"], r["shape"], r["pair"][0], r["pair"][1], r["pair"][2].upper(),
            _fmt_time(t["generated"]), _fmt_time(t["autograd"]), _fmt_time(t["torch.func"]),
            _fmt_time(t["floor"]), r["gen/autograd"],
            "<= {:.2f} {}".format(lim_a, _mark(r["gen/autograd"] <= lim_a)) if lim_a else "-",
            r["gen/floor"],
            "<= {:.2f} {}".format(lim_f, _mark(r["gen/floor"] <= lim_f)) if lim_f else "-",
            r["func/autograd"]))
    return lines


def memory_table(rows):
    lines = ["| size | f/g | generated keeps (mlp.MLP.cache) | autograd saves | generated / autograd | target |",
             "|---|---|--:|--:|--:|---|"]
    for r in rows:
        ratio = r["generated"] / r["autograd"] if r["autograd"] else float("nan")
        lines.append("| {} {} | {}/{} | {} | {} | {:.2f} | <= 1.00 {} |".format(
            r["size"], r["shape"], r["pair"][0], r["pair"][1], _fmt_bytes(r["generated"]),
            _fmt_bytes(r["autograd"]), ratio, _mark(r["generated"] <= r["autograd"])))
    return lines


def render(results, machine_line, seconds):
    out = ["# Benchmarks", "",
           "Written by `make bench` (`python -m benchmarks`); do not edit by hand. Figures are "
           "medians of `torch.utils.benchmark` blocked_autorange measurements ({} interleaved rounds "
           "per method, merged); ratios are ratios of those medians, all from one run. Torch threads: "
           "{} (`python -m benchmarks --threads N` to change).".format(ROUNDS, torch.get_num_threads()),
           "", "Machine: " + machine_line, "", "Whole run: {:.0f} s.".format(seconds), "",
           "## Targets", "", "| target | measured | limit | status |", "|---|---|---|---|"]
    out += ["| {} | {} | {} | {} |".format(t.what, t.measured, t.limit, t.status) for t in results.targets]
    out += ["", "## MLP forward + loss + backward, float32, per call", "",
            "generated: `mlp.MLP.forward`, `mlp.mse_loss`/`mlp.bce_loss`/`mlp.nll_loss`, "
            "`mlp.MLP.backward` (the code printed into generated/layers.py, input checks included). "
            "autograd: `nn.Sequential` + `torch.nn.functional` loss (NLL on one-hot probability "
            "rows, as `mlp.nll_loss` takes them: `-(y * y_hat).sum() / batch`) + `loss.backward()` "
            "(grads set to None first). torch.func: `torch.func.grad` of a functional forward + loss with respect "
            "to the parameters. floor: the five matrix multiplies alone (forward: 2; backward: "
            "dJ/dW2, dJ/dz2, dJ/dW1; no input gradient). Same weights and data for all.", ""]
    out += timing_table(results.timing)
    out += ["", "## Memory kept between forward and backward", "",
            "Distinct storages (a storage counts once, however many tensors or views share it); "
            "the input x and the parameters are NOT counted on either side; only the network "
            "(x to y_hat), not the loss. generated: the tensors in `mlp.MLP.cache` after "
            "`forward(x)`; autograd: the tensors packed by "
            "`torch.autograd.graph.saved_tensors_hooks` during `nn.Sequential(x)`.", ""]
    out += memory_table(results.memory)
    out += ["", "## numerics=\"accurate\": its cost", ""]
    if results.profiles:
        out.append("mlp.MLP(..., numerics=\"accurate\") against the default torch profile and "
                   "autograd (nn.Sequential with torch's function of that name), f as named, g = "
                   "identity, MSE, float32, mid size {}; per call, as above. Only the activations "
                   "whose accurate form differs from PyTorch's (ACCURACY.md gives their bits).".format(
                       results.profiles[0]["shape"]))
        out += ["", "| f | torch profile | accurate | accurate / torch | autograd | accurate keeps | "
                "autograd saves |", "|---|--:|--:|--:|--:|--:|--:|"]
        for r in results.profiles:
            t, b = r["seconds"], r["bytes"]
            out.append("| {} | {} | {} | {:.2f} | {} | {} | {} |".format(
                r["name"], _fmt_time(t["torch"]), _fmt_time(t["accurate"]), t["accurate"] / t["torch"],
                _fmt_time(t["autograd"]), _fmt_bytes(b["accurate"]), _fmt_bytes(b["autograd"])))
    else:
        out.append("Not run.")
    d = results.derive
    out += ["", "## `make derive`, cold", ""]
    if d:
        out.append("A subprocess `python -m derive --check` on an up-to-date tree (interpreter start, "
                   "imports, SymPy derivation, rendering, comparison with generated/), {} runs: {} s; "
                   "median {:.2f} s (target <= {:.1f} s).".format(
                       len(d["times"]), ", ".join("{:.2f}".format(t) for t in d["times"]), d["median"],
                       DERIVE_SECONDS))
        if any(d["codes"]):
            out.append("")
            out.append("It exited with {}: {}".format(d["codes"], d["error"]))
        c = results.derive_checked
        if c:
            out += ["", "When a file is about to change, `make derive` first runs the derivation checks "
                    "(derive/checks.py) and then the trial run, which imports torch. The same subprocess "
                    "with the checks run first: {} s; median {:.2f} s (no target; the trial run adds "
                    "torch's import).".format(", ".join("{:.2f}".format(t) for t in c["times"]), c["median"])]
    g = results.gd
    out += ["", "## gd.py", ""]
    if not g:
        out.append("Not run.")
    elif "error" in g:
        out.append("Not measured: {}. To measure it: `gd.load_bundled(device='cpu')`, then time "
                   "`gd.gradient_descent(image, model, loss, iterations=N)` / N against "
                   "`torch.autograd.grad(loss(model(x)), x)` with the model in eval mode "
                   "(`python -m benchmarks --only gd`).".format(g["error"]))
    else:
        out.append("`gd.gradient_descent` (its defaults) on the bundled SmallNet (assets/gd_small.pt), image "
                   "1x3x{0}x{0}, whole runs of {1} iterations, median of {2} runs: {3} per iteration. One plain "
                   "forward + backward of the same model (eval mode, gradient with respect to the "
                   "image only): {4}. Ratio {5:.2f}x (target <= {6:.2f}x).".format(
                       g["size"], g["iterations"], g["repeats"], _fmt_time(g["per_iteration"]),
                       _fmt_time(g["plain"]), g["per_iteration"] / g["plain"], GD_VS_PLAIN)
                   + _once_per_run_sentence(g) + _race_sentence(g))
    v = results.gd_vgg
    if v:
        out.append("")
        if "error" in v:
            out.append("vgg13_bn: not measured: {}.".format(v["error"]))
        else:
            out.append("The same on the model `gd.main()` uses by default and the homework's grader "
                       "runs, torchvision's vgg13_bn (random weights, `weights=None`: nothing is "
                       "downloaded, and the cost does not depend on the weights), image "
                       "1x3x{0}x{0}, {1} iterations, median of {2} runs: {3} per iteration; one "
                       "plain forward + backward: {4}. Ratio {5:.2f}x (target <= {6:.2f}x).".format(
                           v["size"], v["iterations"], v["repeats"], _fmt_time(v["per_iteration"]),
                           _fmt_time(v["plain"]), v["per_iteration"] / v["plain"], GD_VS_PLAIN)
                       + _once_per_run_sentence(v) + _race_sentence(v))
    if g or v:
        out.append("")
        out.append("Per iteration, `gradient_descent` runs the model once (forward + backward) "
                   "like the plain step (twice in the rotation race's steps, both on the smaller "
                   "octaves' image), plus jitter, normalization, the log-softmax objective, "
                   "gradient blur and the update. Its defaults make some steps cheaper than the "
                   "plain one: the first two of the three octaves run the model on the smaller "
                   "image (`octave_forward='octave'`), so the ratio can fall below 1.")
    if results.compare:
        out += ["", "## torch.utils.benchmark.Compare", "", "```", results.compare.rstrip(), "```"]
    return "\n".join(out) + "\n"


def _once_per_run_sentence(g):
    """The once-per-run cost of options final_blur and normalization beside a step's (runs
    before them: nothing)."""
    if g.get("once_per_run") is None:
        return ""
    return (" The steps are timed with `final_blur` off and `normalization` fixed to what it "
            "measured; those two measurements, once per run (final_blur's graded estimates, "
            "normalization's BatchNorm probe), add {} to a run (the difference of two runs, so "
            "noise can make it negative): {:.1f}% of a 256-iteration run.".format(
                ("-" if g["once_per_run"] < 0 else "") + _fmt_time(abs(g["once_per_run"])),
                100.0 * g["once_per_run"] / (256 * g["per_iteration"])))


def _race_sentence(g):
    """The rotation race's share of a step (runs of a gd.py without it: nothing)."""
    if g.get("without_race") is None:
        return ""
    return (" These steps include the rotation race (option `rotate` 'auto': a second image shaped "
            "through the first two octaves, and one probe of 12 forwards): without it (rotate 0) "
            "a step takes {}, ratio {:.2f}x, so the race adds {:.0f}% to a run.".format(
                _fmt_time(g["without_race"]), g["without_race"] / g["plain"],
                100.0 * (g["per_iteration"] / g["without_race"] - 1.0)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=("mlp", "memory", "profiles", "derive", "gd"), action="append",
                        help="run only these parts (repeatable); BENCHMARKS.md is then not written")
    parser.add_argument("--out", default=str(OUTPUT), help="where to write the report")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for every measurement (default 1: on a shared or "
                             "busy machine, multi-threaded kernels wait on descheduled threads "
                             "and the ratios become noise)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = set(args.only or ("mlp", "memory", "profiles", "derive", "gd"))
    start = time.perf_counter()
    results = Results()
    if "mlp" in parts:
        results.timing, measurements = time_mlp()
        compare = benchmark.Compare(measurements)
        compare.trim_significant_figures()
        results.compare = str(compare)
        print(results.compare)
    if "memory" in parts:
        results.memory = measure_memory()
    if "profiles" in parts:
        results.profiles = profiles.measure(SIZES["mid"])
    if "derive" in parts:
        results.derive = time_derive()
        results.derive_checked = time_derive(code=_WITH_CHECKS)
    if "gd" in parts:
        results.gd = time_gd()
        results.gd_vgg = time_gd_vgg()
    results.targets = targets(results)
    text = render(results, machine(), time.perf_counter() - start)
    print(text)
    if args.only is None:
        pathlib.Path(args.out).write_text(text)
        print("wrote {}".format(args.out))
    return 0
