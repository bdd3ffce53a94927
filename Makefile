# `make test`, `make lab` and `make bench` each bootstrap .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.needle-installed
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per core

.PHONY: install test lab bench workbook notebooks clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The build folder of this venv's install: one per venv, so two venvs (or a plain `pip install -e .`) never
# share one. (pyproject.toml leaves build-dir unset: other installs build in a temporary folder.)
BUILD_DIR := build/venv-$(shell printf '%s' '$(abspath $(VENV))' | cksum | cut -d' ' -f1)

# Editable install that rebuilds the C++ on import: build tools live in the venv (no build isolation).
$(STAMP): pyproject.toml CMakeLists.txt | $(PY)
	$(PIP) install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.18" ninja
	$(PIP) install --quiet --no-build-isolation -Ceditable.rebuild=true "-Cbuild-dir=$(BUILD_DIR)/{wheel_tag}" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

workbook: install
	$(VENV)/bin/needle-course workbook --out exercises

lab: workbook
	$(VENV)/bin/jupyter lab exercises/00_welcome.ipynb

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf build $(VENV) .pytest_cache

# Re-execute the textbook in place (after a change that affects its outputs), then commit it.
notebooks: install
	$(PY) tools/execute_notebooks.py
