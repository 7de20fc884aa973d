# The project's entry points. `make` (the default) sets everything up and runs the main job:
# derive the code and the theory from SymPy, build theory.pdf, run the class visualization,
# and package the submission when NETID is given. `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Imports must not leave __pycache__ inside generated/: it is compared byte for byte.
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all setup venv tex derive check-derive theory gd gd-model gd-eval example submission check-netid bench accuracy test clean clean-dist

# NETID, FORCE and NAME reach the shell only single-quoted and unexpanded ($(value ...)): neither a
# quote nor a $(...) in them is ever run.
# (Command-line variables are exported to recipes, expanded, by default: not these.)
unexport NETID FORCE NAME
NETID_ARG := '$(subst ','\'',$(value NETID))'
FORCE_TRUE := 1 yes true YES TRUE Yes True
FORCE_FALSE := 0 no false NO FALSE No False

all: check-netid setup derive theory gd
	$(if $(value NETID),@$(MAKE) --no-print-directory submission,@echo "make: skipped the submission zip; run 'make NETID=<your net id>' (e.g. ab1234) to build dist/<net id>.zip")

# Before anything else, with the system Python: a bad net id is refused within a second.
check-netid:
	@$(if $(value NETID),$(PYTHON) -m submission.netid $(NETID_ARG),true)

# The virtual environment, with the packages of pyproject.toml (and the tests' extras).
setup: venv tex browser
venv: $(VENV)/.installed
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

# Headless Chromium, its driver and a MathML font for the page's browser tests, from Debian (skipped when present).
.PHONY: browser
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo "browser: chromium and chromedriver found"; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-lmodern; fi

# generated/ from derive/ + templates/; a second run changes nothing.
derive: venv
	$(PY) -m derive

# Fails, naming `make derive`, when generated/ is stale.
check-derive: venv
	$(PY) -m derive --check

# The title page's student line: make NAME="Ada Lovelace" NETID=ab1234. NAME counts only from
# the command line (some systems, WSL among them, set NAME to the host name). Both reach the
# title page through the environment, unexpanded ($(value ...)), like NETID above.
export TITLE_NAME := $(if $(filter command line,$(origin NAME)),$(value NAME))
export TITLE_NETID := $(value NETID)
# A LaTeX error shows its first lines and the log's path; the last good PDF stays.
theory: derive
	$(PY) -m derive.theory.title_page --out theory/build/title.tex
	TEXINPUTS=build: bash theory/build.sh

gd: venv
	$(PY) gd.py --out out/gd

# The layer catalogue as one static page, out/site/index.html (MathML, inline SVG; no server).
.PHONY: site
site: venv
	$(PY) -m derive.web --out out/site

gd-model: venv
	$(PY) -m visualize.train

gd-eval: venv
	$(PY) -m visualize.evaluate --out out/eval
	$(PY) -m visualize.zoo_eval --split held-out --generation 4 --out out/eval

# The README's worked example: a spiral classifier (relu, log_softmax, nll_loss), manual
# backward vs autograd, in seconds on a CPU; writes out/example/spirals.png.
example: venv
	$(PY) -m examples.spirals --out out/example

# An existing dist/<netid>.zip is refused; FORCE=1 (or yes, true) replaces it and keeps the old
# one as a backup.
submission: check-netid derive theory
	$(if $(filter-out $(FORCE_TRUE) $(FORCE_FALSE),$(value FORCE)),$(error FORCE must be 1, yes or true (or 0, no, false), got '$(value FORCE)'))
	$(PY) -m submission.package --netid $(NETID_ARG) $(if $(filter $(FORCE_TRUE),$(value FORCE)),--force)

bench: venv
	$(PY) -m benchmarks

# Bits of error against mpmath: measure the accurate profile's candidates and record the
# winners (derive/accurate_forms.json), derive with them, then certify both profiles and
# autograd into ACCURACY.md + accuracy.json. Fails when a target is missed.
accuracy: venv
	$(PY) -m accuracy choose
	$(PY) -m derive
	$(PY) -m accuracy report

# The tests need the venv, poppler (pdfinfo, pdftotext) and chromium, which `setup` installs.
test: setup
	$(PY) -m pytest -q

# dist/ (the zips and their backups) is kept: `make clean-dist` removes it, on purpose only.
clean:
	rm -rf out theory/build .pytest_cache .hypothesis

clean-dist:
	rm -rf dist
