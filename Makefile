# The project's entry points. `make` (the default) sets everything up and runs the main job:
# derive the code and the theory from SymPy, build theory.pdf, run the class visualization,
# and package the submission when NETID is given. `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Imports must not leave __pycache__ inside generated/: it is compared byte for byte.
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all setup tex derive check-derive theory gd gd-model gd-eval example submission bench test clean

all: setup derive theory gd
	@if [ -n "$(NETID)" ]; then $(MAKE) --no-print-directory submission NETID=$(NETID); \
	else echo "make: skipped the submission zip; run 'make NETID=<your net id>' (e.g. ab1234) to build dist/<net id>.zip"; fi

# The virtual environment, with the packages of pyproject.toml (and the tests' extras).
setup: $(VENV)/.installed tex
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# TeX for theory.pdf, from Debian's packages (needs root or sudo; skipped when present).
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended texlive-pictures texlive-science latexmk lmodern poppler-utils
tex:
	@if command -v latexmk >/dev/null && command -v pdftotext >/dev/null; then echo "tex: latexmk and pdftotext found"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(TEX_PACKAGES); fi

# generated/ from derive/ + templates/; a second run changes nothing.
derive:
	$(PY) -m derive

# Fails, naming `make derive`, when generated/ is stale.
check-derive:
	$(PY) -m derive --check

theory: derive
	cd theory && latexmk -pdf -interaction=nonstopmode -halt-on-error -outdir=build theory.tex >/dev/null
	@echo "theory: theory/build/theory.pdf"

gd:
	$(PY) gd.py --out out/gd

gd-model:
	$(PY) -m visualize.train

gd-eval:
	$(PY) -m visualize.evaluate --out out/eval

# The README's worked example: a spiral classifier (relu, log_softmax, nll_loss), manual
# backward vs autograd, in seconds on a CPU; writes out/example/spirals.png.
example:
	$(PY) -m examples.spirals --out out/example

# An existing dist/<netid>.zip is refused; FORCE=1 replaces it and keeps the old one as a backup.
submission: derive theory
	$(PY) -m submission.package --netid "$(NETID)" $(if $(FORCE),--force)

bench:
	$(PY) -m benchmarks

test:
	$(PY) -m pytest -q

clean:
	rm -rf out dist theory/build .pytest_cache .hypothesis
