# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
# `make demo` installs what the demo uses (numba for the acceleration, graphviz, matplotlib).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# re-install when pyproject.toml changes
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-base

venv: $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(BIN)/python -m encoder demo

test: $(VENV)/.installed-test
	$(BIN)/python -m ruff check minigrad encoder tests examples benchmarks
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/python -m ruff check minigrad encoder tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
