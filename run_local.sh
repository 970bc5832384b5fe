#!/usr/bin/env bash
# The main job, offline: the mock provider on the shipped sample prompts, on Beam's
# DirectRunner, writing real media and a results table to ./output/.
# Arguments pass through to the pipeline, e.g.
#   ./run_local.sh --input my.jsonl --config my.yaml --output ./my-output
set -euo pipefail
cd "$(dirname "$0")"

VENV="${MEDIAGEN_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV ..." >&2
  python3 -m venv "$VENV"
fi
# Install (or refresh) the project when setup.py changed since the last install.
STAMP="$VENV/.mediagen-installed"
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
  echo "installing mediagen and its dependencies into $VENV (first run takes a few minutes) ..." >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e .
  touch "$STAMP"
fi

exec "$VENV/bin/python" -m pipelines.generate \
  --input examples/prompts.jsonl \
  --output ./output \
  "$@"
