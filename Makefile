# The two set-up commands of the README: `make demo` (main job) and `make test` (test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PROMPT ?= A clean poster with the title "GLM IMAGE" on a blue background
OUT ?= outputs/demo.png
# Passed through the environment so any quotes in the prompt reach glmimage intact.
export PROMPT OUT

.PHONY: setup demo test test-fast lint chromium tesseract

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU build of torch from the machine's local wheel first, so nothing pulls a CUDA build.
	$(PIP) install -q torch==2.13.0
	# pyproject.toml's ranges, at the exact versions tested (constraints.txt).
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/glmimage generate "$$PROMPT" --out "$$OUT"

# The tests start their own throwaway PostgreSQL and Redis (tests/throwaway_services.py) unless GLMIMAGE_TEST_POSTGRES /
# GLMIMAGE_TEST_REDIS name running ones; the web UI's browser test needs Debian's Chromium (Playwright's own browser
# download can't work offline), installed here (root) unless GLMIMAGE_TEST_CHROMIUM names another.
test: setup chromium tesseract
	$(PY) -m pytest -q -n 2 --dist loadfile

chromium:
	@test -n "$$GLMIMAGE_TEST_CHROMIUM" || command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The second OCR engine of the evaluation (`glmimage eval --ocr tesseract`).
tesseract:
	@command -v tesseract >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null)

# The inner loop's tier (about a minute): no service or browser tests (tests/service), no training runs
# (tests/training), nothing marked slow (compiling, the bench, `make demo`). `make test` runs everything.
test-fast: setup
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" --ignore=tests/service --ignore=tests/training

lint: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy
