# `make test`, `make lab` and `make bench` each bootstrap .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.needle-installed
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per core

.PHONY: install test test-install lab bench workbook notebooks clean

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

# Every way to install needle, each in a fresh venv (pip install ., pip install -e ., a wheel, Binder's postBuild):
# four builds, about 12 minutes on two cores, so not part of `make test`. CI runs it after `make test`.
test-install: install
	NEEDLE_INSTALL_TESTS=1 $(PY) -m pytest -p no:xdist -q tests/test_install.py

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
