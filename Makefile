# Set-up is two commands (see README): `make demo` and `make test`.
# Both create or reuse .venv in the repo root and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test lint install install-test browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(PY) pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml constraints.txt
	$(PIP) -e '.[test,ray,turkle,bz2]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian's chromium for the browser tests (Playwright drives it; no browser download),
# and a small CJK font (1.6 MB) so Chinese HIT pages show characters, not boxes.
browser:
	@{ command -v chromium && fc-list :lang=zh | grep -q .; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	  else echo "chromium or a CJK font is missing: run 'sudo apt-get install -y chromium fonts-wqy-microhei' (browser tests are skipped without chromium)"; fi; }

demo: install
	$(VENV)/bin/turk demo --out demo-out

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install-test browser lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup

clean:
	rm -rf demo-out .pytest_cache .mypy_cache .ruff_cache
