#!/usr/bin/env bash
# Builds theory/build/theory.pdf with latexmk, keeping the last good PDF when LaTeX fails.
#
#   bash theory/build.sh [extra latexmk arguments]
#
# latexmk works in theory/build/latexmk/; only a successful build is copied to
# theory/build/theory.pdf (with its log, whose page count `make submission` checks). On a
# failure the first TeX errors and the log's path are shown, and the exit status is 1.
set -uo pipefail
cd "$(dirname "$0")"
work=build/latexmk
mkdir -p "$work"
if ! command -v latexmk >/dev/null; then
    echo "theory: latexmk not found; run 'make tex' (installs TeX Live and latexmk)" >&2
    exit 1
fi
if latexmk -pdf -interaction=nonstopmode -halt-on-error -outdir="$work" "$@" theory.tex \
        >"$work/latexmk.out" 2>&1; then
    cp "$work/theory.pdf" build/theory.pdf.partial && mv build/theory.pdf.partial build/theory.pdf
    cp "$work/theory.log" build/theory.log
    echo "theory: theory/build/theory.pdf"
    exit 0
fi
{
    echo "theory: LaTeX failed; theory/build/theory.pdf is unchanged (the last good build, if any)."
    if [ -f "$work/theory.log" ] && grep -q '^!' "$work/theory.log"; then
        echo "First errors (theory/$work/theory.log):"
        # each TeX error: the '!' line, then the context up to the line number (l.NN)
        awk '/^!/ {n++; show=1} show && n<=3 {print "  " $0} /^l\.[0-9]+/ {show=0}' "$work/theory.log" | head -n 30
    else
        echo "latexmk's last lines (theory/$work/latexmk.out):"
        tail -n 15 "$work/latexmk.out" | sed 's/^/  /'
    fi
    echo "Full log: theory/$work/theory.log"
} >&2
exit 1
