#!/usr/bin/env bash
# Make .venv and install digest with its dev extras. Safe to run again: it only installs what
# changed. Uses the machine's python3 (3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"digest needs Python 3.11 or newer, this is {sys.version.split()[0]}")
PY
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.digest-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
