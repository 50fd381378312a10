# Set-up and checks. Every install comes from the lock files in requirements/ (see
# requirements/README.md): every machine gets the same versions. `make lock` refreshes them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK_RUN := requirements/run.lock
LOCK_TEST := requirements/test.lock
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# uv resolves the lock files (make lock) and the lowest-versions run (.ci/run); it lives in its own venv
UV_VERSION := 0.13.9
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv

.PHONY: venv install report test test-slow bench lock clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# runtime packages exactly as locked, then the package itself without resolving anything
$(STAMP_RUN): $(BIN)/python $(LOCK_RUN) pyproject.toml
	$(BIN)/pip install -q -r $(LOCK_RUN)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(STAMP_TEST): $(STAMP_RUN) $(LOCK_TEST)
	$(BIN)/pip install -q -r $(LOCK_TEST)
	touch $@

venv: $(BIN)/python

install: $(STAMP_TEST)

# HTML and Markdown always; the PDF too where Chromium is found (else a one-line note)
report: $(STAMP_RUN)
	@if $(BIN)/python -c "import sys; from causal_hcc.report.render import find_chromium; sys.exit(find_chromium() is None)"; \
	then fmt=html,md,pdf; \
	else fmt=html,md; echo "note: Chromium not found: report.pdf skipped (HTML and Markdown are written; install chromium or set CAUSAL_HCC_CHROMIUM)"; fi; \
	$(BIN)/causal-hcc run configs/paper.yaml --force --format $$fmt
	@echo "report: $$(pwd)/reports/zhang2024-twin/report.html"

test: $(STAMP_TEST)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP_TEST)
	$(BIN)/python -m pytest -q -m slow

docs: $(STAMP_RUN)  # the documentation site (Sphinx, warnings are errors): docs/_build/html/index.html
	$(BIN)/python -c "import sphinx, myst_parser, sphinx_gallery, furo" 2>/dev/null || $(BIN)/pip install -q -e '.[docs]'
	$(BIN)/python -m sphinx -W --keep-going -b html -q docs docs/_build/html

# the benchmarks compare with lifelines, which needs pandas < 3: their own, unlocked venv
bench:
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -e '.[test,bench]'
	.venv-bench/bin/python benchmarks/run_all.py

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

# refresh both lock files to the newest versions pyproject.toml allows (commit the result)
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra test --universal --fork-strategy fewest --python-version 3.11 \
	  --upgrade -q -o $(LOCK_TEST)
	$(UV) pip compile pyproject.toml --constraint $(LOCK_TEST) --universal --fork-strategy fewest \
	  --python-version 3.11 -q -o $(LOCK_RUN)

clean:
	rm -rf $(VENV) $(TOOLS) .venv-bench reports/*/
