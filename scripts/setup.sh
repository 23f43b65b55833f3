#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv at the repository root.
#
#   bash scripts/setup.sh [EXTRAS]
#
# EXTRAS is a comma-separated list of the optional-dependency groups of pyproject.toml:
#   lab   JupyterLab, to run the notebooks (scripts/quickstart.sh)
#   test  the test suite (scripts/test.sh); first installs torch==2.13.0 (CPU) for the
#         tensor and framework tests.
# Default: test. Safe to run again: an existing .venv is reused and only updated.
# The interpreter used to create .venv is $PYTHON (default python3, 3.10 or newer).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-test}"
TORCH_SPEC="torch==2.13.0"

say() { printf '==> [setup] %s\n' "$*"; }
die() { printf '==> [setup] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ $# -gt 1 ]]; then
    die "usage: scripts/setup.sh [EXTRAS]   (e.g. test, lab or lab,test)"
fi
if [[ ! "$EXTRAS" =~ ^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$ ]]; then
    die "EXTRAS must be a comma-separated list of names such as 'lab' or 'lab,test', got '$EXTRAS'"
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3.10 or newer (Debian: apt-get install -y python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); this project needs Python 3.10 or newer"

# Every requested extra must exist in pyproject.toml (pip would only warn and go on).
"$PYTHON" - "$ROOT/pyproject.toml" "$EXTRAS" <<'PY' || exit 1
import sys
try:
    import tomllib
except ImportError:  # Python 3.10: skip the check, pip warns about unknown extras
    sys.exit(0)
with open(sys.argv[1], "rb") as f:
    known = tomllib.load(f).get("project", {}).get("optional-dependencies", {})
unknown = [e for e in sys.argv[2].split(",") if e not in known]
if unknown:
    sys.exit(f"==> [setup] ERROR: unknown extra(s) {', '.join(unknown)}; pyproject.toml defines: {', '.join(known)}")
PY

venv_ok() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }

if venv_ok; then
    say "reusing virtual environment $VENV ($("$VENV/bin/python" -V 2>&1))"
else
    existed=0
    [[ -e "$VENV" ]] && existed=1
    say "creating virtual environment $VENV with $PYTHON ($("$PYTHON" -V 2>&1))"
    if ! "$PYTHON" -m venv "$VENV"; then
        # Debian/Ubuntu ship venv's ensurepip in a separate package.
        [[ $existed -eq 0 ]] && rm -rf "$VENV"
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            say "'$PYTHON -m venv' failed; installing python3-venv with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update
            apt-get install -y python3-venv
            say "retrying: $PYTHON -m venv $VENV"
            "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv $VENV' still fails after installing python3-venv"
        else
            die "'$PYTHON -m venv' failed. On Debian/Ubuntu install the venv module first: sudo apt-get install -y python3-venv"
        fi
    fi
    venv_ok || die "$VENV was created but has no working pip"
fi

PIP=("$VENV/bin/python" -m pip)
say "upgrading pip"
"${PIP[@]}" install --quiet --upgrade pip

# torch first: the test extra's frameworks (lightning, transformers, ...) depend on torch,
# and with none installed pip would take a multi-GB CUDA build for them.
if [[ ",$EXTRAS," == *",test,"* ]]; then
    say "installing $TORCH_SPEC (CPU) for the tensor and framework tests"
    "${PIP[@]}" install --quiet "$TORCH_SPEC"
fi

say "installing lossviz-widget (editable) with extras [$EXTRAS]"
cd "$ROOT"
"${PIP[@]}" install --quiet -e ".[$EXTRAS]"

say "done: $("$VENV/bin/python" -c 'import lossviz_widget, sys; print(f"lossviz_widget {lossviz_widget.__version__} in {sys.prefix}")')"
