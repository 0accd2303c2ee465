"""The "Don't Miss" strip's order: an editor's place for a featured post (``posts.strip_position``).

One added column, empty for every post (the order stays newest published first until an
editor sets one); the downgrade drops it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("posts", sa.Column("strip_position", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("posts", "strip_position")
