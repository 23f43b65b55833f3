#!/usr/bin/env bash
# Command 2: run the test suite.
#
#   bash scripts/test.sh [PYTEST ARGS...]      e.g. -q, -k smoothing, -m "not browser"
#
# Sets up .venv (extras: test, plus torch for the tensor tests), makes sure Debian's
# Chromium is installed (the browser tests drive /usr/bin/chromium through Playwright),
# then runs pytest. The exit status is pytest's: non-zero on any failure, error,
# or when no test ran at all. The suite includes tests/test_tooling.py: ruff, mypy and
# import-linter, which the test extra installs (the same checks as .pre-commit-config.yaml).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM=/usr/bin/chromium

say() { printf '==> [test] %s\n' "$*"; }

bash "$ROOT/scripts/setup.sh" test

if [[ ! -x "$CHROMIUM" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "$CHROMIUM missing: installing Debian's chromium with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y chromium
    else
        printf '==> [test] ERROR: %s is missing; the browser tests need it. Install it with:\n' "$CHROMIUM" >&2
        printf '               sudo apt-get update && sudo apt-get install -y chromium\n' >&2
        exit 1
    fi
fi
say "browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

cd "$ROOT"
say "running: python -m pytest $*"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
