# `make test`, `make lab` and `make bench` each bootstrap .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.needle-installed
DEV_STAMP := $(VENV)/.needle-dev
MUTATE_STAMP := $(VENV)/.needle-mutate
PYTEST_ARGS ?= -n auto  # pytest-xdist: one worker per core
LAB_ARGS ?=             # e.g. LAB_ARGS="--no-browser --port=8899"
MUTATE_ARGS ?=          # e.g. MUTATE_ARGS="needle/optim.py needle/ops"; default: every core module

.DEFAULT_GOAL := install  # `make` alone installs needle and its dev extra into .venv

.PHONY: install test test-install test-portable mutate lab bench bench-compilers workbook notebooks clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The build folder of this venv's install: one per venv, so two venvs (or a plain `pip install -e .`) never
# share one. (pyproject.toml leaves build-dir unset: other installs build in a temporary folder.)
BUILD_DIR := build/venv-$(shell printf '%s' '$(abspath $(VENV))' | cksum | cut -d' ' -f1)
EDITABLE := -Ceditable.rebuild=true "-Cbuild-dir=$(BUILD_DIR)/{wheel_tag}"

# Editable install that rebuilds the C++ on import: build tools live in the venv (no build isolation).
# A learner gets needle, JupyterLab and the mpi extra (mpi4py and MPICH from PyPI wheels: chapter 10 runs mpirun);
# the dev extra (pytest, playwright, ...) is for `make test`.
# The editable install's import finder maps the modules it saw when installed, so a module removed or turned into
# a package is still looked for at its old path: the install is redone when the list of modules changes.
MODULES := $(VENV)/.needle-modules
$(shell mkdir -p $(VENV) && find needle -name '*.py' | sort > $(MODULES).new && \
        (cmp -s $(MODULES).new $(MODULES) || mv $(MODULES).new $(MODULES)); rm -f $(MODULES).new)

$(STAMP): pyproject.toml CMakeLists.txt $(MODULES) | $(PY)
	$(PIP) install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.18" ninja
	$(PIP) install --quiet --no-build-isolation $(EDITABLE) -e ".[mpi]"
	@$(PY) -c "import needle.backend_ndarray as nd; m = nd.cpu().mod; m is None or m.__openmp__ or print('needle: the CPU backend was built without OpenMP and runs on one thread (' + m.__build__ + '); see the README (macOS: brew install libomp, then make clean lab)')"
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) install --quiet --no-build-isolation $(EDITABLE) -e ".[dev,mpi]"
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Every way to install needle, each in a fresh venv (pip install ., pip install -e ., a wheel, Binder's postBuild):
# four builds, about 12 minutes on two cores, so not part of `make test`. CI runs it after `make test`.
test-install: $(DEV_STAMP)
	NEEDLE_INSTALL_TESTS=1 $(PY) -m pytest -p no:xdist -q tests/infra/test_install.py

# Other compilers and ARM64 (CI runs it after `make test`): the kernel tests on a clang build of the CPU
# backend, and the C++ tests of tests/native/ (CPU kernels, the CUDA simulator's fibers) built with clang
# without OpenMP, and cross-built for aarch64 with GCC and clang and run under qemu-user.
CLANG_BUILD := build/compilers/clang
test-portable: $(DEV_STAMP)
	$(PY) tools/cpu_build.py build $(CLANG_BUILD) --cxx clang++
	$(PY) tools/cpu_build.py run $(CLANG_BUILD) -c "import sys, needle.backend_ndarray as nd; b = nd.cpu().mod.__build__; print('cpu():', b); sys.exit(not b.startswith('clang'))"
	$(PY) tools/cpu_build.py run $(CLANG_BUILD) -m pytest tests/backend/test_cpu_kernels.py tests/backend/test_ndarray_ops.py $(PYTEST_ARGS)
	PYTHON=$(PY) tests/native/run.sh clang++ --no-openmp
	PYTHON=$(PY) tests/native/run.sh aarch64-linux-gnu-g++
	PYTHON=$(PY) tests/native/run.sh clang++ --target=aarch64-linux-gnu --no-openmp

$(MUTATE_STAMP): $(DEV_STAMP)
	$(PIP) install --quiet setuptools wheel  # cosmic-ray needs yattag, an sdist built here without isolation
	$(PIP) install --quiet --no-build-isolation $(EDITABLE) -e ".[dev,mutate]"
	touch $(MUTATE_STAMP)

# Mutation testing of the core modules (tools/mutate.py): one planted bug at a time, the module's own tests run
# against each, the survivors listed and the kill rate per module reported (also in build/mutate/report.txt).
# Hours for every module on two cores, so not part of `make test`; a stopped run resumes where it stopped.
mutate: $(MUTATE_STAMP)
	nice -n 19 $(PY) tools/mutate.py $(MUTATE_ARGS)

workbook: $(STAMP)
	$(VENV)/bin/needle-course workbook --out exercises

# JupyterLab's root is the repository (the textbook in notebooks/ is one click away), opened on the workbook's
# first chapter; its terminals find needle-course because .venv/bin comes first on PATH.
lab: workbook
	@if [ "$$(id -u)" = 0 ]; then echo "note: running as root (a container?), so JupyterLab starts with --allow-root"; fi
	@echo "JupyterLab serves this repository; if no browser opens, open the http://127.0.0.1:.../lab/tree/exercises/00_welcome.ipynb?token=... address it prints below (Ctrl+C stops it)"
	PATH="$(abspath $(VENV))/bin:$$PATH" VIRTUAL_ENV="$(abspath $(VENV))" $(VENV)/bin/jupyter lab \
		--ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/exercises/00_welcome.ipynb \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks

# the CPU backend built by GCC and by clang, each against numpy, in one run
bench-compilers: $(STAMP)
	$(PY) -m benchmarks.compilers

clean:
	rm -rf build $(VENV) .pytest_cache

# Re-execute the textbook in place (after a change that affects its outputs), then commit it.
notebooks: $(STAMP)
	$(PY) tools/execute_notebooks.py
