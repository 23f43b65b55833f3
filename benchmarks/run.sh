#!/usr/bin/env bash
# Benchmarks: lossviz_widget against livelossplot, a naive bqplot loop and a bare Python loop.
#
#   bash benchmarks/run.sh            full run, 1e3..1e7 steps (~10-15 min on 2 cores): writes benchmarks/RESULTS.md
#   bash benchmarks/run.sh --quick    1e3..1e5 steps (< 3 min): writes benchmarks/out/RESULTS-quick.md
#   bash benchmarks/run.sh --smoke    1e3 steps, no browser (seconds): what tests/test_benchmarks.py runs
#
# Other arguments go to benchmarks/run.py (--no-browser, --out DIR, --results FILE; see --help).
# Uses the project's .venv (created by scripts/setup.sh with the test extras: JupyterLab,
# Playwright, nbclient) and installs the benchmark-only extra, livelossplot, into it.
# Column 5 drives Debian's /usr/bin/chromium (apt-get install -y chromium).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
LIVELOSSPLOT="livelossplot==0.6.1"

say() { printf '==> [bench] %s\n' "$*"; }

if ! { [[ -x "$PY" ]] && "$PY" -c 'import lossviz_widget, jupyterlab, playwright, nbclient' 2>/dev/null; }; then
    say "setting up .venv with the test extras (scripts/setup.sh test)"
    bash "$ROOT/scripts/setup.sh" test
fi
if ! "$PY" -c 'import livelossplot' 2>/dev/null; then
    say "installing the benchmark-only extra $LIVELOSSPLOT into .venv"
    "$PY" -m pip install --quiet "$LIVELOSSPLOT"
fi
browser=1
for arg in "$@"; do
    [[ "$arg" == "--smoke" || "$arg" == "--no-browser" ]] && browser=0
done
if [[ $browser -eq 1 && ! -x /usr/bin/chromium ]]; then
    say "ERROR: /usr/bin/chromium is missing; column 5 needs it (apt-get install -y chromium), or pass --no-browser" >&2
    exit 1
fi
cd "$ROOT"
say "running: benchmarks/run.py $*"
exec "$PY" benchmarks/run.py "$@"
