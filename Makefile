# The two set-up commands of the README: `make demo` (main job) and `make test` (test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PROMPT ?= A clean poster with the title "GLM IMAGE" on a blue background
OUT ?= outputs/demo.png
# Passed through the environment so any quotes in the prompt reach glmimage intact.
export PROMPT OUT

.PHONY: setup demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	# Debian's Chromium for the web UI's browser test (Playwright's own browser download can't work offline).
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU build of torch from the machine's local wheel first, so nothing pulls a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/glmimage generate "$$PROMPT" --out "$$OUT"

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: setup
	$(VENV)/bin/ruff check src tests
