"""Build the course submission zip, and prove it runs before writing it.

    python -m submission.package --netid ab1234 [--mlp generated/mlp_standalone.py]
        [--gd gd.py] [--pdf theory/build/theory.pdf] [--out dist] [--force]

writes ``<out>/<netid>.zip`` holding exactly ``theory.pdf``, ``mlp.py`` (the self-contained
file given by ``--mlp``) and ``gd.py`` at its top level. The zip is first built in a temporary
folder and unpacked into fresh folders, and these checks run on the unpacked files:

1. ``pdf``: theory.pdf parses with poppler's pdfinfo, has the page count LaTeX logged for it,
   and its text (pdftotext) holds the handout's question numbers;
2. ``python37``: mlp.py and gd.py parse with the Python 3.7 grammar (and avoid a few run-time
   features newer than 3.7);
3. ``imports``: mlp.py imports only torch and the standard library; gd.py only numpy, torch,
   torchvision and the standard library;
4. ``torch171``: every torch name and tensor method they use exists in torch 1.7.1;
5. ``course tests``: each script in ``generated/course_tests/`` (the MLP ones, rendered by
   ``make derive`` from one template) and ``submission/course_tests/`` (gd.py's) runs as ``python script.py``
   in a folder holding only the three files and that script, exits 0 and prints only lines
   that are ``True`` (or ``tensor(True)``, which is what the course's own
   ``print((a - b).norm() < 1e-3)`` prints), at least one;
6. ``gd main``: ``python gd.py`` runs as the grader runs it, in a folder holding the zip's files
   and, as the grader's machine would when offline, the bundled model (``assets/``: it travels
   with this check, never in the zip), without network: main() ends normally and prints an
   ``ANSWER_FOR_LABEL_<label>: <probability>`` line per label;
7. ``gd ascent``: on that run, every call of ``gradient_descent`` raised its target class's
   probability well above where it started: the graded number closes at least ``RISE`` of the
   gap between the start and 1 (see submission/gd_main_run.py).

Problems found in the zip's mlp.py are reported at the line of the file they come from
(mlp.py or generated/layers.py), the zip's line in brackets.

Only when all pass is the zip moved into place. Exit status: 0 written, 1 a check failed (no
zip written), 2 bad input (net id, missing file, existing zip without ``--force``).
"""

import argparse
import concurrent.futures
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

from derive import source_map
from submission import api_check, pdf_check
from submission import netid as netid_rules

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The course-style scripts: the MLP ones rendered by `make derive`, and gd.py's smoke test.
COURSE_TESTS = (os.path.join(REPO, "generated", "course_tests"),
                os.path.join(REPO, "submission", "course_tests"))

# gd.py's run as the grader runs it: the watcher script, and the bundled model it falls back to.
GD_MAIN_RUN = os.path.join(REPO, "submission", "gd_main_run.py")
BUNDLED_MODEL = os.path.join(REPO, "assets", "gd_small.pt")
ANSWER_RE = re.compile(r"^ANSWER_FOR_LABEL_(\d+): (.*)$")
# "Well above where it started": the graded probability closes this much of the gap to 1.
RISE = 0.5

ZIP_NAMES = ("theory.pdf", "mlp.py", "gd.py")
MLP_THIRD_PARTY = {"torch"}
GD_THIRD_PARTY = {"numpy", "torch", "torchvision"}
TRUE_LINES = {"True", "tensor(True)"}

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """Refused before any check ran (exit status 2)."""


class CheckFailed(Exception):
    """A named validation check failed (exit status 1)."""

    def __init__(self, check, details):
        super().__init__("check '%s' failed" % check)
        self.check = check
        self.details = details


def validate_netid(netid):
    """Returns the net id, or raises BadInput saying what a net id looks like."""
    try:
        return netid_rules.validate_netid(netid)
    except netid_rules.BadNetid as error:
        raise BadInput(str(error))


def _read(path, what):
    if not os.path.isfile(path):
        raise BadInput("%s not found: %s" % (what, path))
    with open(path, "rb") as fh:
        return fh.read()


def write_zip(path, contents):
    """A deterministic zip: fixed names and order, fixed timestamps, mode 0644."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ZIP_NAMES:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, contents[name])


def check_zip_layout(path, contents):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if sorted(names) != sorted(ZIP_NAMES):
            raise CheckFailed("zip layout", "the zip holds %s, expected exactly %s"
                              % (names, list(ZIP_NAMES)))
        bad = zf.testzip()
        if bad is not None:
            raise CheckFailed("zip layout", "corrupt member %s" % bad)
        for name in ZIP_NAMES:
            if zf.read(name) != contents[name]:
                raise CheckFailed("zip layout", "%s in the zip differs from its source" % name)


def static_checks(folder, log, expected_pages=None, mlp_sources=None):
    """Runs the checks of single files on the unpacked files; raises on the first failing check
    with all of its findings. mlp_sources ({name: text}): the files the zip's mlp.py was built
    from, to report its problems at their lines."""
    problems = pdf_check.check_pdf("theory.pdf", os.path.join(folder, "theory.pdf"), expected_pages)
    if problems:
        raise CheckFailed("pdf", "\n".join(problems))
    log("check pdf: ok")
    sources = {}
    for name in ("mlp.py", "gd.py"):
        with open(os.path.join(folder, name), "rb") as fh:
            raw = fh.read()
        try:
            sources[name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckFailed("python37", "%s is not UTF-8: %s" % (name, exc))
    static_checks = (
        ("python37", lambda: [p for n, src in sources.items() for p in api_check.check_python37(n, src)]),
        ("imports", lambda: api_check.check_imports("mlp.py", sources["mlp.py"], MLP_THIRD_PARTY)
         + api_check.check_imports("gd.py", sources["gd.py"], GD_THIRD_PARTY)),
        ("torch171", lambda: [p for n, src in sources.items() for p in api_check.check_torch_api(n, src)]),
    )
    for check, run in static_checks:
        problems = run()
        if problems and mlp_sources:
            problems = source_map.relocate(problems, "mlp.py", sources["mlp.py"], mlp_sources)
        if problems:
            raise CheckFailed(check, "\n".join(problems))
        log("check %s: ok" % check)


def _clean_env():
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONSAFEPATH"):
        env.pop(var, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run_unpacked(zip_path, folder, copies, argv, env, timeout):
    """Unpacks the zip into `folder`, copies each file of `copies` ({source: path relative to
    folder}) beside it, and runs `argv` there. Returns (completed process or None when it timed
    out, stdout, stderr, seconds)."""
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder)
    for source, place in copies.items():
        target = os.path.join(folder, place)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
    start = datetime.datetime.now()
    try:
        proc = subprocess.run(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return None, out, err, timeout
    return proc, proc.stdout, proc.stderr, (datetime.datetime.now() - start).total_seconds()


def run_script(script, zip_path, python, timeout):
    """Unpacks the zip into a fresh folder, adds the script, runs `python script.py` there.

    Returns (script name, problem or None, stdout, stderr, seconds)."""
    name = os.path.basename(script)
    with tempfile.TemporaryDirectory(prefix="course-test-") as folder:
        proc, out, err, seconds = _run_unpacked(zip_path, folder, {script: name}, [python, name],
                                                _clean_env(), timeout)
    if proc is None:
        return name, "timed out after %ss" % timeout, out, err, timeout
    lines = proc.stdout.splitlines()
    if proc.returncode != 0:
        problem = "exit status %d" % proc.returncode
    elif not lines:
        problem = "printed nothing"
    else:
        bad = [(i + 1, line) for i, line in enumerate(lines) if line.strip() not in TRUE_LINES]
        problem = None
        if bad:
            problem = "line %d printed %r (every line must be True); %d of %d lines not True" % (
                bad[0][0], bad[0][1], len(bad), len(lines))
    return name, problem, proc.stdout, proc.stderr, seconds


def course_tests(zip_path, tests_dirs, python, timeout, jobs, log):
    scripts = sorted((os.path.join(d, n) for d in tests_dirs for n in os.listdir(d)
                      if n.endswith(".py") and not n.startswith("_")), key=os.path.basename)
    if not scripts:
        raise CheckFailed("course tests", "no test scripts in %s" % ", ".join(tests_dirs))
    paths = {os.path.basename(s): s for s in scripts}
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_script, s, zip_path, python, timeout) for s in scripts]
        for future in futures:
            name, problem, out, err, seconds = future.result()
            if problem is None:
                log("check course tests: %s ok (%d lines True, %.1fs)"
                    % (name, len(out.splitlines()), seconds))
            else:
                failures.append(_describe_failure(name, problem, out, err, _header(paths[name])))
    if failures:
        raise CheckFailed("course tests", "\n\n".join(failures))


def _offline_env(torch_home):
    """The grader's machine without network: every download fails at once (a proxy that
    refuses), and an empty torch hub cache, so gd.py takes its offline path."""
    env = _clean_env()
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env[var] = "http://127.0.0.1:9"
    for var in ("no_proxy", "NO_PROXY"):
        env.pop(var, None)
    env["TORCH_HOME"] = torch_home
    return env


def model_place(model_path, gd_path):
    """Where the bundled model goes in the grader's folder: where it lies relative to gd.py in
    the repository (assets/gd_small.pt), or in assets/ when it lies elsewhere."""
    relative = os.path.relpath(os.path.abspath(model_path), os.path.dirname(os.path.abspath(gd_path)))
    if relative.startswith(os.pardir) or os.path.isabs(relative):
        relative = os.path.join("assets", os.path.basename(model_path))
    return relative


def run_gd_main(zip_path, python, timeout, model_path, place=None):
    """`python gd.py` in a folder holding the zip's files and the bundled model (at `place`,
    relative to gd.py), offline, watched by submission/gd_main_run.py. Returns a dict: problem
    (None or why it did not run to the end), stdout, stderr, report (the watcher's, or None),
    seconds."""
    with tempfile.TemporaryDirectory(prefix="gd-main-") as work:
        place = place or os.path.join("assets", os.path.basename(model_path))
        report_path = os.path.join(work, "report.json")
        proc, out, err, seconds = _run_unpacked(
            zip_path, os.path.join(work, "grader"), {model_path: place, GD_MAIN_RUN: "_gd_main_run.py"},
            [python, "_gd_main_run.py", report_path], _offline_env(os.path.join(work, "torch-home")), timeout)
        if proc is None:
            return {"problem": "python gd.py did not finish within %gs" % timeout, "stdout": out,
                    "stderr": err, "report": None, "seconds": timeout}
        report = None
        if os.path.exists(report_path):
            with open(report_path) as fh:
                report = json.load(fh)
    problem = None
    if report is None:
        problem = "python gd.py ended without a report (exit status %d)" % proc.returncode
    elif report["error"]:
        problem = "python gd.py failed:\n" + _tail(report["error"], 12)
    return {"problem": problem, "stdout": proc.stdout, "stderr": proc.stderr, "report": report,
            "seconds": seconds}


def _answers(stdout):
    """{label: the text after the colon} of the ANSWER lines (the last one for each label)."""
    answers = {}
    for line in stdout.splitlines():
        match = ANSWER_RE.match(line.strip())
        if match:
            answers[int(match.group(1))] = match.group(2).strip()
    return answers


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def judge_gd_main(run, log):
    """Raises CheckFailed('gd main' or 'gd ascent') unless the run passed both."""
    context = "\n  stdout:\n%s\n  stderr:\n%s" % (_tail(run["stdout"], 12), _tail(run["stderr"], 12))
    where = ("python gd.py, run as the grader runs it (no arguments, in a folder with the zip's "
             "files and the bundled model %s, no network)" % os.path.relpath(BUNDLED_MODEL, REPO))
    if run["problem"]:
        raise CheckFailed("gd main", "%s:\n%s%s" % (where, run["problem"], context))
    answers = _answers(run["stdout"])
    if not answers:
        raise CheckFailed("gd main", "%s printed no ANSWER_FOR_LABEL_<label>: <probability> line; "
                          "the grader reads the probabilities from them%s" % (where, context))
    bad = ["ANSWER_FOR_LABEL_%d: %s" % (label, text) for label, text in sorted(answers.items())
           if _probability(text) is None]
    if bad:
        raise CheckFailed("gd main", "%s printed ANSWER lines whose value is not a probability in "
                          "[0, 1]: %s%s" % (where, "; ".join(bad), context))
    log("check gd main: ok (%d ANSWER lines, %.1fs)" % (len(answers), run["seconds"]))
    calls = run["report"]["calls"]
    if not calls:
        raise CheckFailed("gd ascent", "%s: main() never called gradient_descent%s" % (where, context))
    failures = []
    for call in calls:
        if "skipped" in call:
            failures.append("call %d: %s" % (call["index"] + 1, call["skipped"]))
            continue
        if "output_shape" not in call:
            failures.append("call %d: gradient_descent returned no image (%s)" % (
                call["index"] + 1, call.get("returned", "None, or it raised")))
            continue
        if call["output_shape"] != call["input_shape"] or not call["finite"]:
            failures.append("call %d: gradient_descent returned shape %s (the input's: %s)%s" % (
                call["index"] + 1, call["output_shape"], call["input_shape"],
                "" if call["finite"] else " with NaN or inf"))
            continue
        # Both numbers must rise: the graded one (the model as gradient_descent left it, e.g. in
        # training mode, where a gray image can score high by chance) and the deterministic one.
        target, start, end = call["target"], call["start"], call["end"]
        graded = _probability(answers.get(target, ""))
        needed = start + RISE * (1.0 - start)
        if graded is None:
            failures.append("class %d: gradient_descent was called for it, but main() printed no "
                            "ANSWER_FOR_LABEL_%d line" % (target, target))
        elif min(end, graded) < needed:
            failures.append(
                "class %d: probability %.4f at the start; after gradient_descent %.4f in eval mode, "
                "%.4f graded (ANSWER_FOR_LABEL_%d); needs at least %.4f (%d%% of the way from the "
                "start to 1)" % (target, start, end, graded, target, needed, RISE * 100))
    if failures:
        raise CheckFailed("gd ascent", "gradient_descent did not raise the target class's "
                          "probability on the bundled model, in %s:\n%s%s" % (
                              where, "\n".join("  " + f for f in failures), context))
    log("check gd ascent: ok (%d calls; lowest probability reached %.4f)" % (
        len(calls), min(min(c["end"], _probability(answers[c["target"]])) for c in calls)))


def _tail(text, lines=25):
    parts = text.rstrip().splitlines()
    if len(parts) > lines:
        parts = ["... (%d lines before)" % (len(parts) - lines)] + parts[-lines:]
    return "\n".join("    " + p for p in parts) if parts else "    (empty)"


def _header(script):
    """The script's leading comment block (it says what the printed lines mean)."""
    lines = []
    with open(script, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            lines.append("    " + line.rstrip())
    return "\n".join(lines)


def _describe_failure(name, problem, out, err, header=""):
    about = "  about the script:\n%s\n" % header if header else ""
    return "%s: %s\n%s  stdout:\n%s\n  stderr:\n%s" % (name, problem, about, _tail(out), _tail(err))


def build(args, log=print):
    """Validates and writes the zip; returns its path. Raises BadInput or CheckFailed."""
    netid = validate_netid(args.netid)
    out_dir = os.path.abspath(args.out)
    target = os.path.join(out_dir, netid + ".zip")
    if not os.path.isfile(args.gd_model):
        raise BadInput("the bundled model gd.py falls back to offline was not found: %s "
                       "(--gd-model; `make gd-model` trains it)" % args.gd_model)
    if os.path.exists(target) and not args.force:
        raise BadInput("%s already exists; not overwriting it. Move it away, or pass --force "
                       "(with make: FORCE=1) to replace it (the old zip is then kept as a "
                       "timestamped backup next to it)" % target)
    contents = {
        "theory.pdf": _read(args.pdf, "theory.pdf (--pdf; build it with `make theory`)"),
        "mlp.py": _read(args.mlp, "the self-contained mlp.py (--mlp; render it with `make derive`)"),
        "gd.py": _read(args.gd, "gd.py (--gd)"),
    }
    tests_dirs = args.tests_dir or COURSE_TESTS
    for folder in tests_dirs:
        if not os.path.isdir(folder):
            raise BadInput("course test folder not found: %s" % folder)
    with tempfile.TemporaryDirectory(prefix="submission-") as work:
        zip_path = os.path.join(work, netid + ".zip")
        write_zip(zip_path, contents)
        check_zip_layout(zip_path, contents)
        log("check zip layout: ok (%s)" % ", ".join(ZIP_NAMES))
        unpacked = os.path.join(work, "unpacked")
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(unpacked)
        mlp_sources = {}
        for source in args.mlp_source or []:
            with open(source, encoding="utf-8") as fh:
                mlp_sources[os.path.relpath(os.path.abspath(source), REPO)] = fh.read()
        static_checks(unpacked, log, pdf_check.pages_in_log(os.path.splitext(args.pdf)[0] + ".log"),
                      mlp_sources)
        # gd.py's run takes longest: it runs beside the course tests.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            gd_run = pool.submit(run_gd_main, zip_path, args.python, args.gd_timeout, args.gd_model,
                                 model_place(args.gd_model, args.gd))
            course_tests(zip_path, tests_dirs, args.python, args.timeout, args.jobs, log)
            judge_gd_main(gd_run.result(), log)
        os.makedirs(out_dir, exist_ok=True)
        partial = os.path.join(out_dir, ".%s.zip.partial" % netid)
        shutil.copyfile(zip_path, partial)
        try:
            if os.path.exists(target):
                stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
                backup = os.path.join(out_dir, "%s.zip.%s.bak" % (netid, stamp))
                os.replace(target, backup)
                log("--force: kept the previous zip as %s" % backup)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return target


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m submission.package",
        description="Validate and write <out>/<netid>.zip with theory.pdf, mlp.py and gd.py.")
    parser.add_argument("--netid", help="your NYU net id, e.g. ab1234 (names the zip)")
    parser.add_argument("--mlp", default=os.path.join(REPO, "generated", "mlp_standalone.py"),
                        help="the self-contained mlp.py to submit (default: %(default)s)")
    parser.add_argument("--gd", default=os.path.join(REPO, "gd.py"),
                        help="gd.py to submit (default: %(default)s)")
    parser.add_argument("--pdf", default=os.path.join(REPO, "theory", "build", "theory.pdf"),
                        help="theory.pdf to submit (default: %(default)s)")
    parser.add_argument("--mlp-source", action="append",
                        help="a file the self-contained mlp.py was built from, to report problems at "
                             "its lines; repeat for more (default: mlp.py and generated/layers.py)")
    parser.add_argument("--gd-model", default=BUNDLED_MODEL,
                        help="the bundled model, put beside gd.py as it lies beside it here (else in "
                             "assets/) for gd.py's run as the grader runs it, offline "
                             "(default: %(default)s)")
    parser.add_argument("--gd-timeout", type=float, default=600.0,
                        help="seconds `python gd.py` may take (default: %(default)s)")
    parser.add_argument("--out", default=os.path.join(REPO, "dist"),
                        help="folder for the zip (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing zip (the old one is kept as a backup)")
    parser.add_argument("--tests-dir", action="append",
                        help="a folder of course-style test scripts to run; repeat for more "
                             "(default: %s)" % " and ".join(COURSE_TESTS))
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs the test scripts (default: this one)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each test script may take (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                        help="test scripts run at once (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.mlp_source is None and os.path.abspath(args.mlp) == os.path.join(
            REPO, "generated", "mlp_standalone.py"):
        args.mlp_source = [os.path.join(REPO, "mlp.py"), os.path.join(REPO, "generated", "layers.py")]
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        target = build(args)
    except BadInput as exc:
        print("submission: refused: %s" % exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    except CheckFailed as exc:
        print("submission: check '%s' failed; no zip written.\n%s" % (exc.check, exc.details),
              file=sys.stderr)
        return EXIT_CHECK_FAILED
    print("submission: wrote %s (%s)" % (target, ", ".join(ZIP_NAMES)))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
