#!/usr/bin/env bash
# Create bench/.reachml-venv: a virtualenv of its own for the reachml peer (Cheon et al. ICLR 2025;
# Kothari et al. ICLR 2024). reachml pins numpy ~2.1.3 and pandas ~2.2.3, so it cannot share the
# project's .venv; bench/reachml/runner.py runs inside it and exchanges data through files.
#
# Solver: reachml's SCIP backend imports `cplex` for a type check (scip_utils -> cplex_utils), so
# the CPLEX Community Edition wheel (free, on PyPI) is installed to satisfy that import. runner.py
# chooses the solver explicitly: `--solver scip` hides cplex while reachml is imported (reachml
# picks CPLEX whenever find_spec("cplex") succeeds, and binds that default into its signatures),
# `--solver cplex` (the runner's default) uses it. CPLEX is the default because reachml 0.2.0a1's
# SCIP backend keeps only the last DirectionalLinkage into a shared target (German credit links
# two features to Age); the community edition's limit of 1000 variables and constraints per
# model is ample for per-partition enumeration here.
#
# scikit-learn and skops are pinned to the project's versions so that the model files written
# with skops by the project load unchanged (both support numpy 2.1).
#
# Idempotent: re-running checks the installed versions and only installs what is missing.
# Usage: bash bench/reachml/setup_env.sh [--force]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(cd "$HERE/.." && pwd)/.reachml-venv"
PY="${PYTHON:-python3.11}"

PINS=(
  "reachml==0.2.0a1"
  "numpy==2.1.3"
  "pandas==2.2.3"
  "pyscipopt==6.3.0"
  "cplex==22.1.2.0"
  "scikit-learn==1.9.1"
  "skops==0.16.0"
)

if [[ "${1:-}" == "--force" && -d "$VENV" ]]; then
  echo "setup_env: --force given, removing $VENV"
  rm -rf "$VENV"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup_env: creating $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
else
  echo "setup_env: $VENV exists"
fi

# Check installed distributions against the pins (exact match), install only when something differs.
missing="$("$VENV/bin/python" - "${PINS[@]}" <<'EOF'
import sys
from importlib import metadata
out = []
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        out.append(pin)
print(" ".join(out))
EOF
)"

if [[ -n "$missing" ]]; then
  echo "setup_env: installing ${missing}"
  "$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
else
  echo "setup_env: all pins already installed, nothing to do"
fi

# Smoke check: reachml imports with either solver and reproduces its own scorer test vectors.
"$VENV/bin/python" "$HERE/runner.py" --check --solver scip
"$VENV/bin/python" "$HERE/runner.py" --check --solver cplex
echo "setup_env: done; interpreter: $VENV/bin/python"
