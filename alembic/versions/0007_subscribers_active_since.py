"""When each subscriber last became active: the scheduler's first digest for a reader is the
first period whose send hour comes after it, so an import or a confirmation late in the day is
not mailed within the minute.

Existing rows keep NULL, which the scheduler reads as "active since before any period".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import digest.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column("active_since", digest.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35 and later have it): a batch rebuild would drop and
    # re-create the table, and its foreign key would take every delivery with it.
    op.drop_column("subscribers", "active_since")
