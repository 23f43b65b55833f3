#!/usr/bin/env bash
# Create or update the project's virtual environment in .venv at the repository root.
#
#   bash scripts/setup.sh [EXTRAS]
#
# EXTRAS is a comma-separated list of the optional-dependency groups of pyproject.toml:
#   lab   JupyterLab, to run the notebooks (scripts/quickstart.sh)
#   test  the test suite (scripts/test.sh); first installs torch==2.13.0 (CPU) for the
#         tensor and framework tests.
#   docs  mkdocs-material + mkdocstrings, to build the documentation site (mkdocs.yml)
# Default: test. Safe to run again: an existing .venv is reused and only updated.
# The interpreter used to create .venv is $PYTHON (default python3, 3.10 or newer).
#
# A re-run takes well under a second: after a successful install, .venv/.lossviz-setup
# records a hash of pyproject.toml and of this script, and the extras installed with
# them. While both files are unchanged and the requested extras are among those
# recorded, pip is not run at all. LOSSVIZ_SETUP_FORCE=1 installs anyway.
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

# Fast path: the environment was set up by this script, from these same files, with
# these extras (or more). Nothing below (not even pip) runs.
STAMP="$VENV/.lossviz-setup"
fingerprint="$(cat "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
recorded=""   # extras installed from the current files, as "a,b,c" (empty: none known)
if [[ -f "$STAMP" ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
    read -r stamp_fingerprint stamp_extras <"$STAMP" || true
    [[ "${stamp_fingerprint:-}" == "$fingerprint" ]] && recorded="${stamp_extras:-}"
fi
IFS=',' read -r -a requested <<<"$EXTRAS"
up_to_date=1
for extra in "${requested[@]}"; do
    [[ ",$recorded," == *",$extra,"* ]] || up_to_date=0
done
if [[ $up_to_date -eq 1 && -z "${LOSSVIZ_SETUP_FORCE:-}" ]]; then
    say "$VENV is up to date for [$EXTRAS] (pyproject.toml and this script unchanged since it was set up); skipping pip"
    exit 0
fi
rm -f "$STAMP"  # written again only once the install below has succeeded

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

# What is installed now: the requested extras, plus those recorded for the same files.
installed="$(printf '%s\n' ${recorded//,/ } "${requested[@]}" | sort -u | paste -sd, -)"
printf '%s %s\n' "$fingerprint" "$installed" >"$STAMP"
