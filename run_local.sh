#!/usr/bin/env bash
# The main job, offline: the mock provider on the shipped sample prompts, on Beam's
# DirectRunner, writing real media and a results table to ./output/.
# Arguments pass through to the pipeline, e.g.
#   ./run_local.sh --input my.jsonl --config my.yaml --output ./my-output
# Relative paths given to --input, --output and --config are taken from the folder you
# run this from; the defaults (examples/prompts.jsonl, ./output) are the project's own.
#   ./run_local.sh --input examples/prompts_image.jsonl --config examples/image.yaml
#   ./run_local.sh --input examples/prompts_tts.jsonl --config examples/tts.yaml
set -euo pipefail
CALLER_DIR="$(pwd)"

# A relative local path as seen from the caller's folder; URIs and absolute paths as given.
resolve() {
  case "$1" in
    /*|*://*|"") printf '%s' "$1" ;;
    *) printf '%s/%s' "$CALLER_DIR" "$1" ;;
  esac
}
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --input|--output|--config)
      ARGS+=("$1")
      shift
      if [ $# -gt 0 ]; then ARGS+=("$(resolve "$1")"); shift; fi
      ;;
    --input=*|--output=*|--config=*)
      ARGS+=("${1%%=*}=$(resolve "${1#*=}")")
      shift
      ;;
    *)
      ARGS+=("$1")
      shift
      ;;
  esac
done

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
  ${ARGS[@]+"${ARGS[@]}"}
