#!/usr/bin/env bash
# Run digest's test suite on a fresh machine: install, start what the tests need, run pytest.
# Arguments go to pytest (e.g. scripts/test.sh -k subscribers -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
exec .venv/bin/python -m pytest "$@"
