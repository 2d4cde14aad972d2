#!/usr/bin/env bash
# Builds a small log and executes every notebook in this folder headless, as CI does. A failing cell fails the script.
# Usage: notebooks/run.sh [OUTPUT_DIR [NOTEBOOK...]]  (default: a new temporary folder, every notebooks/*.ipynb).
# The executed notebooks, the database (notebooks.duckdb) and the improve report land in OUTPUT_DIR; a database
# already there is reused, so re-executing edited notebooks takes seconds. Needs Debian's jupyter-nbconvert and the
# npm package `deno` (a dev dependency).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/selfharness-notebooks.XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd)
shift || true
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=("$root"/notebooks/*.ipynb)

if ! command -v jupyter-nbconvert >/dev/null 2>&1; then
  echo "notebooks/run.sh: jupyter-nbconvert is not installed; install it with: apt-get install -y --no-install-recommends jupyter-nbconvert" >&2
  exit 3
fi
if [ ! -x "$root/node_modules/deno/deno" ]; then
  echo "notebooks/run.sh: the Deno binary is missing at node_modules/deno/deno; run: npm install (the deno package's postinstall puts it there)" >&2
  exit 3
fi

export SELFHARNESS_DB="$out/notebooks.duckdb"
started=$(date +%s)
if [ -f "$SELFHARNESS_DB" ]; then
  echo "notebooks: reusing the log $SELFHARNESS_DB" >&2
else
  rm -f "$SELFHARNESS_DB.partial" "$SELFHARNESS_DB.partial.wal"
  echo "notebooks: improving the harness for sim:late-artifacts on 6 tasks (proposals, decisions, versions) ..." >&2
  (cd "$root" && node cli/bin.js --db "$SELFHARNESS_DB.partial" improve --model sim:late-artifacts --iterations 1 \
    --candidates 2 --attempts 1 --gate paper --held-in make-hello-subdir,source-env-report,count-words,backup-script \
    --held-out file-manifest,render-template-env --sealed none --report "$out/improve-report" >"$out/improve.txt")
  (cd "$root" && node --import tsx notebooks/build-log.ts "$SELFHARNESS_DB.partial")
  mv "$SELFHARNESS_DB.partial" "$SELFHARNESS_DB"
  [ ! -f "$SELFHARNESS_DB.partial.wal" ] || mv "$SELFHARNESS_DB.partial.wal" "$SELFHARNESS_DB.wal"
fi

# The committed kernel spec (notebooks/kernels/deno) runs the npm package's Deno binary.
export JUPYTER_PATH="$root/notebooks${JUPYTER_PATH:+:$JUPYTER_PATH}"
export JUPYTER_RUNTIME_DIR="$out/jupyter-runtime"
export DENO_NO_UPDATE_CHECK=1
for notebook in "${notebooks[@]}"; do
  echo "notebooks: executing $notebook ..." >&2
  jupyter-nbconvert --execute --to notebook --ExecutePreprocessor.kernel_name=deno \
    --ExecutePreprocessor.timeout=120 --output-dir "$out" "$notebook"
done
echo "notebooks: done in $(($(date +%s) - started)) s; executed notebooks in $out" >&2
