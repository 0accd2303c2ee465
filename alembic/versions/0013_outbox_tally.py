"""The outbox as last counted (``outbox_tally``, refreshed by the scheduler once a minute) and a
partial index for the latest failures, so the desk's Today page reads a few rows whatever the
outbox holds.

Only a new table and an index; the downgrade drops exactly those.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import digest.models

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = digest.models.UTCDateTime(timezone=True)
_PROBLEMS = sa.text("status IN ('deferred', 'bounced', 'failed')")


def upgrade() -> None:
    op.create_table(
        "outbox_tally",
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("counted_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_deliveries_problems",
        "deliveries",
        ["updated_at", "id"],
        unique=False,
        postgresql_where=_PROBLEMS,
        sqlite_where=_PROBLEMS,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_problems", table_name="deliveries")
    op.drop_table("outbox_tally")
