"""Is theory.pdf a PDF a grader can open and read? Checked with poppler (pdfinfo, pdftotext).

A file that only starts with ``%PDF`` is not enough: pdfinfo must parse it, it must have the
page count LaTeX reported when it wrote it (``Output written on ... (9 pages`` in the log next
to it, when there is one), and its text must hold the handout's question numbers.
"""
import os
import re
import shutil
import subprocess

# The handout's theory questions; each answer's heading carries its number.
QUESTIONS = ("1.1", "1.2", "1.3", "1.4", "1.5")
POPPLER_HINT = "install poppler-utils (`make tex` does: it is one of the TeX packages)"


def _run(tool, *args):
    if shutil.which(tool) is None:
        return None, "%s not found; %s" % (tool, POPPLER_HINT)
    proc = subprocess.run([tool] + list(args), capture_output=True, text=True, errors="replace",
                          timeout=60)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[0]
        return None, "%s cannot read it: %s" % (tool, first)
    return proc.stdout, None


def pages_in_log(log_path):
    """The page count LaTeX wrote in its log, or None."""
    if not log_path or not os.path.isfile(log_path):
        return None
    with open(log_path, encoding="latin-1") as fh:
        found = re.findall(r"Output written on .*?\((\d+) pages?", fh.read(), re.S)
    return int(found[-1]) if found else None


def check_pdf(name, path, expected_pages=None, questions=QUESTIONS):
    """Problems with the PDF at path (empty when it is fine)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head.startswith(b"%PDF"):
        return ["%s does not start with %%PDF (got %r): not a PDF file" % (name, head)]
    info, problem = _run("pdfinfo", path)
    if problem:
        return ["%s: %s" % (name, problem)]
    pages = re.search(r"^Pages:\s+(\d+)", info, re.M)
    pages = int(pages.group(1)) if pages else 0
    if pages < 1:
        return ["%s has no pages" % name]
    if expected_pages is not None and pages != expected_pages:
        return ["%s has %d pages but LaTeX wrote %d: the file is not the one built"
                % (name, pages, expected_pages)]
    text, problem = _run("pdftotext", "-q", path, "-")
    if problem:
        return ["%s: %s" % (name, problem)]
    missing = [q for q in questions if q not in text]
    if missing:
        return ["%s does not mention question(s) %s: is it the theory answers?"
                % (name, ", ".join(missing))]
    return []
