"""The Makefile as a user meets it: a bad net id is refused at once and never reaches the shell
unquoted, FORCE means only yes, every target that needs the venv builds it, `make clean` keeps
the zips, and a LaTeX error shows its first lines and keeps the last good PDF."""
import os
import shutil
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make not installed")


def make(*args, cwd=REPO, timeout=60):
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    return subprocess.run([MAKE, "--no-print-directory"] + list(args), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("netid, hint", [("AB1234", "use lowercase: ab1234"),
                                         ("ab1234.zip", "without .zip"),
                                         ("ab-1234", "2 or 3 lowercase letters")])
def test_a_bad_netid_is_refused_within_seconds(netid, hint):
    start = time.monotonic()
    proc = make("NETID=" + netid, timeout=60)
    assert time.monotonic() - start < 10
    assert proc.returncode != 0
    assert hint in proc.stderr and "python -m derive" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("netid", ['ab1234"; echo INJECTED; echo "', "ab1234'; echo INJECTED; echo '",
                                   "ab1234`echo INJECTED`", "$$(echo INJECTED)",
                                   "$(shell echo INJECTED >&2)"])
@pytest.mark.parametrize("target", ["all", "submission", "check-netid"])
def test_netid_never_runs_as_shell_or_make_code(netid, target, tmp_path):
    marker = tmp_path / "ran"
    proc = make(target, "NETID=" + netid.replace("echo INJECTED", "echo INJECTED; touch " + str(marker)),
                timeout=60)
    assert proc.returncode != 0
    assert "INJECTED" not in [line.strip() for line in (proc.stdout + proc.stderr).splitlines()]
    assert not marker.exists()
    assert "is not a net id" in proc.stderr


@pytest.mark.parametrize("force, forced", [("", False), ("0", False), ("no", False), ("false", False),
                                           ("1", True), ("yes", True), ("true", True), ("TRUE", True)])
def test_only_a_true_force_forces(force, forced):
    proc = make("-n", "submission", "NETID=ab1234", "FORCE=" + force)
    assert proc.returncode == 0, proc.stderr
    (command,) = [line for line in proc.stdout.splitlines() if "submission.package" in line]
    assert ("--force" in command) == forced
    assert "--netid 'ab1234'" in command


def test_an_unclear_force_is_refused():
    proc = make("-n", "submission", "NETID=ab1234", "FORCE=maybe")
    assert proc.returncode != 0 and "FORCE must be 1, yes or true" in proc.stderr


@pytest.mark.parametrize("target", ["test", "derive", "check-derive", "theory", "gd", "gd-model",
                                    "gd-eval", "bench", "submission", "all"])
def test_every_target_that_runs_python_builds_the_venv_first(target, tmp_path):
    venv = str(tmp_path / "venv")
    proc = make("-n", target, "NETID=ab1234", "VENV=" + venv)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    creates = [i for i, line in enumerate(lines) if "-m venv " + venv in line]
    uses = [i for i, line in enumerate(lines) if line.startswith(venv + "/bin/python -m") and "pip" not in line
            or line.startswith(venv + "/bin/python gd.py")]
    assert creates and uses, proc.stdout
    assert creates[0] < uses[0]


def test_clean_keeps_dist_and_clean_dist_removes_it(tmp_path):
    shutil.copy(os.path.join(REPO, "Makefile"), tmp_path / "Makefile")
    for folder in ("out/gd", "dist", "theory/build"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "dist" / "ab1234.zip").write_bytes(b"zip")
    (tmp_path / "dist" / "ab1234.zip.20260101-000000.bak").write_bytes(b"old")
    assert make("clean", cwd=str(tmp_path)).returncode == 0
    assert not (tmp_path / "out").exists() and not (tmp_path / "theory" / "build").exists()
    assert sorted(os.listdir(tmp_path / "dist")) == ["ab1234.zip", "ab1234.zip.20260101-000000.bak"]
    assert make("clean-dist", cwd=str(tmp_path)).returncode == 0
    assert not (tmp_path / "dist").exists()


DOCUMENT = "\\documentclass{article}\n\\begin{document}\n%s\n\\end{document}\n"


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed (make tex)")
def test_a_latex_error_shows_its_lines_and_keeps_the_last_good_pdf(tmp_path):
    theory = tmp_path / "theory"
    theory.mkdir()
    shutil.copy(os.path.join(REPO, "theory", "build.sh"), theory / "build.sh")
    (theory / "theory.tex").write_text(DOCUMENT % "Answers 1.1")
    good = subprocess.run(["bash", str(theory / "build.sh")], capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    pdf = theory / "build" / "theory.pdf"
    built = pdf.read_bytes()
    assert built.startswith(b"%PDF") and (theory / "build" / "theory.log").exists()

    (theory / "theory.tex").write_text(DOCUMENT % "Answers\n\\undefinedmacro{1.1}")
    bad = subprocess.run(["bash", str(theory / "build.sh")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    assert "! Undefined control sequence." in bad.stderr and "l.4" in bad.stderr, bad.stderr
    assert "Full log: theory/build/latexmk/theory.log" in bad.stderr
    assert "theory/build/theory.pdf is unchanged" in bad.stderr
    assert pdf.read_bytes() == built
