"""Index transactional deliveries by Message-ID: bounce reports and complaints name the mail
they are about. Digests are found through (edition, subscriber), which their Message-ID encodes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_message_id",
        "deliveries",
        ["message_id"],
        unique=False,
        postgresql_where=sa.text("kind != 'digest'"),
        sqlite_where=sa.text("kind != 'digest'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
