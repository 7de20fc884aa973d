"""Runs gd.py as the grader does and watches every call of its gradient_descent.

Copied by `make submission` (submission/package.py) into a bare folder that holds the zip's
files and the bundled model (assets/), and run there as

    python gd_main_run.py REPORT.json

It executes gd.py exactly as `python gd.py` would (as __main__, no arguments), so gd.py's own
main() chooses the model: offline that is the bundled classifier. gd.py is a black box: only
its public API is relied on, `gradient_descent(input, model, loss, iterations)` (the first
three parameters, whatever they are named) and the ANSWER lines main() prints on stdout.

For each call of gradient_descent it records the class the loss points at (the largest entry
of d loss / d logits at the starting image) and that class's probability at the start and at
the returned image, both measured on an eval-mode copy of the model (deterministic, and the
model itself is not touched). REPORT.json gets the calls and how main() ended; the packager
judges them. This script prints nothing on stdout: every stdout line is gd.py's.
"""
import copy
import json
import os
import runpy
import sys
import traceback

import torch

GD = "gd.py"


def _eval_copy(model):
    return copy.deepcopy(model).eval()


def _describe_start(model, image, loss):
    """(target class, its probability) at the starting image, or (None, why not)."""
    model = _eval_copy(model)
    with torch.no_grad():
        logits = model(image.detach())
    if logits.dim() != 2:
        return None, "the model's output has shape %s, not (batch, classes)" % (tuple(logits.shape),)
    probe = logits.detach().clone().requires_grad_()
    with torch.enable_grad():
        value = loss(probe)
        if not (torch.is_tensor(value) and value.requires_grad):
            return None, "the loss does not depend on the model's output"
        grad, = torch.autograd.grad(value, probe)
    target = int(grad[0].argmax())
    return target, logits.softmax(1)[0, target].item()


def _probability(model, image, target):
    with torch.no_grad():
        return _eval_copy(model)(image.detach()).softmax(1)[0, target].item()


class Watcher(object):
    """A trace function: sees gradient_descent's frames in gd.py (call and return), nothing else."""

    def __init__(self):
        self.calls = []
        self.open = {}

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if (event != "call" or code.co_name != "gradient_descent"
                or os.path.basename(code.co_filename) != GD):
            return None  # no line tracing anywhere else: gd.py runs at full speed
        record = {"index": len(self.calls)}
        self.calls.append(record)
        try:
            names = code.co_varnames[:3]
            image, model, loss = (frame.f_locals[n] for n in names)
            record["input_shape"] = list(image.shape)
            target, start = _describe_start(model, image, loss)
            if target is None:
                record["skipped"] = start
            else:
                record["target"], record["start"] = target, start
            self.open[id(frame)] = (record, model, target)
        except Exception as error:  # the observer's own failure must not look like gd.py's
            record["skipped"] = "could not read the call: %s: %s" % (type(error).__name__, error)
        return self.local

    def local(self, frame, event, arg):
        if event == "return" and id(frame) in self.open:
            record, model, target = self.open.pop(id(frame))
            if arg is None:  # an exception is leaving gradient_descent
                record["raised"] = True
            elif not torch.is_tensor(arg):
                record["returned"] = type(arg).__name__
            else:
                record["output_shape"] = list(arg.shape)
                record["finite"] = bool(torch.isfinite(arg).all())
                if target is not None and record["finite"]:
                    try:
                        record["end"] = _probability(model, arg, target)
                    except Exception as error:
                        record["skipped"] = "the model rejects the returned image: %s: %s" % (
                            type(error).__name__, error)
        return self.local


def main():
    report_path = sys.argv[1]
    watcher = Watcher()
    report = {"calls": watcher.calls, "error": None}
    sys.argv = [GD]
    sys.settrace(watcher)
    try:
        runpy.run_path(GD, run_name="__main__")
    except SystemExit as exit:
        if exit.code not in (None, 0):
            report["error"] = "gd.py exited with %r" % (exit.code,)
    except BaseException:
        report["error"] = traceback.format_exc()
    finally:
        sys.settrace(None)
        sys.stdout.flush()
    with open(report_path, "w") as fh:
        json.dump(report, fh, indent=1)
    return 1 if report["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
