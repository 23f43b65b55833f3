#!/usr/bin/env bash
# Command 2: run the test suite.
#
#   bash scripts/test.sh [PYTEST ARGS...]      e.g. -q, -k smoothing, -m "not browser"
#
# Sets up .venv (extras: test, plus torch for the tensor tests), makes sure Debian's
# Chromium (the browser tests drive /usr/bin/chromium through Playwright) and Node.js (js/'s
# unit tests) are installed,
# then runs pytest. The exit status is pytest's: non-zero on any failure, error,
# or when no test ran at all. The suite includes tests/test_tooling.py: ruff, mypy and
# import-linter, which the test extra installs (the same checks as .pre-commit-config.yaml).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM=/usr/bin/chromium

say() { printf '==> [test] %s\n' "$*"; }

bash "$ROOT/scripts/setup.sh" test

missing=()
[[ -x "$CHROMIUM" ]] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)  # js/'s unit tests (node --test)
if (( ${#missing[@]} )); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y "${missing[@]}"
    elif [[ ! -x "$CHROMIUM" ]]; then
        printf '==> [test] ERROR: %s is missing; the browser tests need it. Install it with:\n' "$CHROMIUM" >&2
        printf '               sudo apt-get update && sudo apt-get install -y chromium nodejs\n' >&2
        exit 1
    else
        say "node is missing: tests/test_js.py will skip (sudo apt-get install -y nodejs runs it)"
    fi
fi
say "browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

cd "$ROOT"
say "running: python -m pytest $*"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
