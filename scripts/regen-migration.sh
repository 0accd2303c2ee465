#!/usr/bin/env bash
# Regenerate the initial migration from src/digest/models.py. Used only while digest has not
# been released: once a release is out, add a new revision instead of rewriting this one.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f alembic/versions/0001_initial.py
DIGEST_DATABASE_URL="sqlite:///$tmp/empty.db" .venv/bin/alembic revision --autogenerate \
  --rev-id 0001 -m "initial schema" >/dev/null
mv alembic/versions/0001_initial_schema.py alembic/versions/0001_initial.py
.venv/bin/ruff format -q alembic/versions/0001_initial.py
.venv/bin/ruff check -q --fix alembic/versions/0001_initial.py || true
rm -rf "$tmp"
echo "alembic/versions/0001_initial.py regenerated"
