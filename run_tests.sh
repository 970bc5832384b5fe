#!/usr/bin/env bash
# The test suite in a project venv: installs mediagen with its test and conformance extras, then pytest.
# Arguments pass through to pytest, e.g. ./run_tests.sh tests/providers -x
set -euo pipefail
cd "$(dirname "$0")"

VENV="${MEDIAGEN_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.mediagen-test-installed"
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[test,conformance]"
  touch "$STAMP"
fi
exec "$VENV/bin/python" -m pytest "$@"
