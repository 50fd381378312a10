PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv install report test test-slow bench clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(BIN)/causal-hcc run configs/paper.yaml --force
	@echo "report: $$(pwd)/reports/zhang2024-twin/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

docs: $(STAMP)  # the documentation site (Sphinx, warnings are errors): docs/_build/html/index.html
	$(BIN)/python -c "import sphinx, myst_parser, sphinx_gallery, furo" 2>/dev/null || $(BIN)/pip install -q -e '.[docs]'
	$(BIN)/python -m sphinx -W --keep-going -b html -q docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports/*/
