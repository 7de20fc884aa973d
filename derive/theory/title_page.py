"""The student's line on theory.pdf's title page: ``make theory NAME="Ada Lovelace" NETID=ab1234``.

    python -m derive.theory.title_page [--name NAME] [--netid NETID] --out theory/build/title.tex

writes a file that theory/theory.tex reads (``\\InputIfFileExists{title.tex}``, found through
TEXINPUTS): it defines ``\\studentline`` as the name and the net id, escaped for LaTeX, or
leaves it empty, and then the title page shows the course's header only. The file is always
rewritten, so a name from an earlier build never lingers. The defaults come from the
environment (TITLE_NAME, TITLE_NETID), which is how the Makefile passes them: no shell
quoting can break on a name like O'Brien.
"""
import argparse
import os
import pathlib
import sys

# LaTeX's special characters, each as text that prints it.
_ESCAPES = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
}


def _typesettable(ch):
    """pdflatex with T1 fonts sets Latin-1 and Latin Extended-A (e.g. e-acute, l-stroke)."""
    return ord(ch) < 0x180 and (ch.isprintable() or ch == " ")


def escape(text, what="text"):
    """``text`` as LaTeX that prints it; ValueError naming any character pdflatex cannot set."""
    bad = sorted({ch for ch in text if not _typesettable(ch)})
    if bad:
        raise ValueError("{} {!r}: cannot typeset {} on the title page (pdflatex sets Latin letters "
                         "only); give it in Latin letters".format(what, text, ", ".join(repr(ch) for ch in bad)))
    return "".join(_ESCAPES.get(ch, ch) for ch in " ".join(text.split()))


def student_line(name="", netid=""):
    """'Ada Lovelace \\quad Net ID: \\texttt{ab1234}', either part alone, or '' for neither."""
    parts = []
    if name.strip():
        parts.append(escape(name, "NAME"))
    if netid.strip():
        parts.append(r"Net ID: \texttt{" + escape(netid.strip(), "NETID") + "}")
    return r" \quad ".join(parts)


def title_tex(name="", netid=""):
    line = student_line(name, netid)
    head = "% Written by `make theory` (python -m derive.theory.title_page); rewritten on every build.\n"
    if not line:
        return head + "% No NAME or NETID given: the title page shows the course's header only.\n"
    return head + "\\renewcommand{\\studentline}{" + line + "}\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m derive.theory.title_page", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=os.environ.get("TITLE_NAME", ""), help="the student's name")
    parser.add_argument("--netid", default=os.environ.get("TITLE_NETID", ""), help="the student's net id")
    parser.add_argument("--out", required=True, help="the file to write (theory/build/title.tex)")
    args = parser.parse_args(argv)
    try:
        text = title_tex(args.name, args.netid)
    except ValueError as exc:
        print("title page: {}".format(exc), file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text() != text:  # unchanged: latexmk has nothing to redo
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
