#!/usr/bin/env bash
# Command 1: see a live loss curve.
#
#   bash scripts/quickstart.sh [JUPYTER LAB ARGS...]   set up .venv (extras: lab) and open
#                                                      notebooks/01_quickstart.ipynb in JupyterLab
#                                                      (e.g. --ip=0.0.0.0 --port=8888 --no-browser)
#   bash scripts/quickstart.sh --headless [NBCONVERT ARGS...]
#                                                      run the same notebook in a real kernel, no
#                                                      browser, and write snapshots/ (the executed
#                                                      notebook and plot.export() files:
#                                                      quickstart.png/.html/.csv/.json)
# LOSSVIZ_SNAPSHOT_DIR (default: snapshots/ at the repository root) moves the snapshot files.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
NOTEBOOK="notebooks/01_quickstart.ipynb"

say() { printf '==> [quickstart] %s\n' "$*"; }

headless=0
args=()
for arg in "$@"; do
    if [[ "$arg" == "--headless" ]]; then
        headless=1
    else
        args+=("$arg")
    fi
done

# Where the notebook's last cell writes its snapshot files: snapshots/ at the repository
# root unless LOSSVIZ_SNAPSHOT_DIR is set. Made absolute, because the kernel's working
# directory is notebooks/ (the notebook's folder), both in JupyterLab and headless.
snapshots="$(realpath -m -- "${LOSSVIZ_SNAPSHOT_DIR:-$ROOT/snapshots}")"
export LOSSVIZ_SNAPSHOT_DIR="$snapshots"

bash "$ROOT/scripts/setup.sh" lab
cd "$ROOT"

if [[ $headless -eq 1 ]]; then
    mkdir -p "$snapshots"
    marker="$(mktemp)"
    trap 'rm -f "$marker"' EXIT
    say "executing $NOTEBOOK in a kernel without a browser (LOSSVIZ_SNAPSHOT_DIR=$LOSSVIZ_SNAPSHOT_DIR)"
    start=$SECONDS
    "$VENV/bin/jupyter" nbconvert --to notebook --execute "$NOTEBOOK" \
        --output-dir "$snapshots" \
        --ExecutePreprocessor.kernel_name=python3 \
        --ExecutePreprocessor.timeout=120 \
        ${args[@]+"${args[@]}"}
    say "notebook ran in $((SECONDS - start)) s; snapshot files written:"
    find "$snapshots" -maxdepth 1 -type f -newer "$marker" -printf '    %p (%s bytes)\n' | sort
    say "open $snapshots/quickstart.html in a browser for the report (it works offline)"
else
    if [[ $(id -u) -eq 0 ]]; then
        args+=(--allow-root)  # JupyterLab refuses to start as root otherwise
    fi
    say "starting JupyterLab on $NOTEBOOK (Ctrl-C to stop); run all cells and watch the plot"
    say "the notebook's snapshot files will go to $LOSSVIZ_SNAPSHOT_DIR"
    exec "$VENV/bin/jupyter" lab "$NOTEBOOK" ${args[@]+"${args[@]}"}
fi
